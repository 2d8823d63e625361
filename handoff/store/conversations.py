"""Conversations in Redis: the record (packed by handoff/store/compact.py), handed out as
`ConversationRecord`; its append-only parts (transcript, log, metrics, annotations), one
list each; and which conversation an SMS thread between two numbers belongs to.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..models import ConversationRecord
from .base import StoreBase
from .compact import NEWEST_HANDOFF, NEWEST_HANDOFF_PREFIX, pack_conversation, unpack_conversation
from .keys import Keys

CONVERSATION_PARTS = ("transcript", "log", "metrics", "annotations")


def newest_handoff_in(raw: str | None) -> str | None:
    """The newest handoff id a stored conversation names (None: none, or no conversation)."""
    if raw and raw.startswith(NEWEST_HANDOFF_PREFIX):
        return raw[len(NEWEST_HANDOFF_PREFIX):raw.index('"', len(NEWEST_HANDOFF_PREFIX))]
    return None


class ConversationStore(StoreBase):
    def create_conversation(self, conversation: ConversationRecord, pipe=None) -> ConversationRecord | None:
        """Create once. Returns None when created, else the conversation already stored
        (nothing is overwritten: a retried webhook finds the first one)."""
        # Stored without its id and empty fields (handoff/store/compact.py).
        existing = self._create_item(Keys.conversations, Keys.conversation(conversation.id), conversation.id,
                                     pack_conversation(conversation.to_dict()), pipe=pipe)
        return None if existing is None else self._conversation_from(existing, conversation.id)

    @staticmethod
    def _conversation_from(stored: dict, conversation_id: str) -> ConversationRecord:
        if NEWEST_HANDOFF in stored:
            stored = {name: value for name, value in stored.items() if name != NEWEST_HANDOFF}
        return ConversationRecord.from_dict(unpack_conversation(stored, conversation_id))

    @staticmethod
    def queue_conversation_read(pipe, conversation_id: str) -> None:
        """Queue the read `stored_conversation` parses into a pipeline its caller sends anyway."""
        pipe.get(Keys.conversation(conversation_id))

    def stored_conversation(self, raw: str | None, conversation_id: str) -> ConversationRecord | None:
        """The conversation `queue_conversation_read` read (None: there is none yet)."""
        return self._conversation_from(json.loads(raw), conversation_id) if raw else None

    def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        doc = self._get_json(Keys.conversation(conversation_id))
        return self._conversation_from(doc, conversation_id) if doc else None

    def get_conversations(self, ids: Iterable[str]) -> list[ConversationRecord | None]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.redis.mget([Keys.conversation(i) for i in ids])
        return [self._conversation_from(json.loads(r), i) if r else None for i, r in zip(ids, raws)]

    def update_conversation(self, conversation_id: str,
                            mutate: Callable[[ConversationRecord], Any]) -> ConversationRecord | None:
        box: dict[str, ConversationRecord] = {}

        def apply(stored: dict) -> Any:
            conversation = self._conversation_from(stored, conversation_id)
            result = mutate(conversation)
            newest = stored.get(NEWEST_HANDOFF)
            stored.clear()
            if newest:
                stored[NEWEST_HANDOFF] = newest  # first, where the create script finds it
            stored.update(pack_conversation(conversation.to_dict()))
            box["conversation"] = conversation
            return result

        doc, _ = self._update_json(Keys.conversation(conversation_id), apply)
        return None if doc is None else box["conversation"]

    def has_handoffs(self, conversation_id: str) -> bool:
        return bool(self.newest_handoff_candidates([conversation_id])[0])

    def newest_handoff_candidates(self, conversation_ids: list[str]) -> list[list[str]]:
        """Each conversation's handoff ids to try, newest first, in one round trip: the one
        its JSON names, or, for a conversation whose handoffs were all created before that
        field existed, its old per-conversation index (`Keys.conversation_handoffs`; those
        indexes expire with the retention window, and this fallback can go with them)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                pipe.get(Keys.conversation(conversation_id))
                pipe.zrevrange(Keys.conversation_handoffs(conversation_id), 0, 10)
            found = pipe.execute()
        out = []
        for raw, older in zip(found[::2], found[1::2]):
            newest = newest_handoff_in(raw)
            out.append([newest] if newest else older)
        return out

    def append_conversation(self, conversation_id: str, part: str, entry: dict) -> None:
        key = Keys.conversation_part(conversation_id, part)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(entry))
            pipe.expire(key, self.retention)
            pipe.expire(Keys.conversation(conversation_id), self.retention)
            pipe.execute()

    def conversation_parts(self, conversation_id: str) -> dict[str, list[dict]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for part in CONVERSATION_PARTS:
                pipe.lrange(Keys.conversation_part(conversation_id, part), 0, -1)
            lists = pipe.execute()
        return {part: [json.loads(x) for x in items] for part, items in zip(CONVERSATION_PARTS, lists)}

    def conversation_part(self, conversation_id: str, part: str, last: int | None = None) -> list[dict]:
        start = -last if last else 0
        return [json.loads(x) for x in self.redis.lrange(Keys.conversation_part(conversation_id, part), start, -1)]

    def remember_shared_conversation(self, shared_id: str, conversation_id: str) -> None:
        self.redis.set(Keys.shared_conversation(shared_id), conversation_id, ex=self.retention)

    def conversation_for_shared_id(self, shared_id: str) -> str | None:
        """The id `remember_shared_conversation` last kept for this shared id, if any."""
        return self.redis.get(Keys.shared_conversation(shared_id))

    def sms_thread(self, sender: str, recipient: str) -> str | None:
        """The id of the conversation texts between these two numbers go to, if any."""
        return self.redis.get(Keys.sms_thread(sender, recipient))

    def remember_sms_thread(self, sender: str, recipient: str, conversation_id: str) -> None:
        self.redis.set(Keys.sms_thread(sender, recipient), conversation_id, ex=self.retention)
