"""Signed-in page sessions, recorded server-side so that signing out ends them.

The browser's signed cookie names a session; the session exists only while its record
does (kept by the store, `Keys.page_session`), so a copied cookie stops working when its
owner signs out, and each record expires with the cookie.
"""
from __future__ import annotations

import secrets

from .store import Store


class StudioSessions:
    def __init__(self, store: Store, lifetime: int):
        self.store = store
        self.lifetime = lifetime

    def start(self, key_fingerprint: str) -> str:
        """A new session for whoever signed in with the key of this fingerprint; its id."""
        session_id = secrets.token_urlsafe(32)
        self.store.start_page_session(session_id, key_fingerprint, self.lifetime)
        return session_id

    def fingerprint(self, session_id: str) -> str | None:
        """The key fingerprint of a live session, or None once it has ended."""
        return self.store.page_session(session_id) if session_id else None

    def end(self, session_id: str) -> None:
        if session_id:
            self.store.end_page_session(session_id)
