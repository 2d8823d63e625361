"""Signed-in page sessions, recorded server-side so that signing out ends them.

A store module beside `store.py` (same `handoff:` prefix, keys only here). The browser's
signed cookie names a session; the session exists only while its record does, so a copied
cookie stops working when its owner signs out, and each record expires with the cookie.
"""
from __future__ import annotations

import secrets

import redis

from .store import PREFIX


class StudioSessions:
    def __init__(self, client: redis.Redis, lifetime: int):
        self.redis = client
        self.lifetime = lifetime

    @staticmethod
    def key(session_id: str) -> str:
        return f"{PREFIX}studio_session:{session_id}"

    def start(self, key_fingerprint: str) -> str:
        """A new session for whoever signed in with the key of this fingerprint; its id."""
        session_id = secrets.token_urlsafe(32)
        self.redis.set(self.key(session_id), key_fingerprint, ex=self.lifetime)
        return session_id

    def fingerprint(self, session_id: str) -> str | None:
        """The key fingerprint of a live session, or None once it has ended."""
        return self.redis.get(self.key(session_id)) if session_id else None

    def end(self, session_id: str) -> None:
        if session_id:
            self.redis.delete(self.key(session_id))
