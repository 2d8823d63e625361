"""The routing configuration in Redis: its draft, its live copy and its versions.

The configuration is a flat map of entities — `d:<id>` (a destination), `t:<id>` (a
topic), `default` (the default destination id), `integration` — so that a change, its
version record and a diff are all the same shape: `{entity: [before, after]}`.

- The draft (what the API and the page edit; the `sandbox`) lives in the keys it always
  had (`Keys.destinations`, `Keys.topics`, `Keys.default_destination`, `Keys.integration`),
  and `ConfigKeys.version` counts its changes (both named in handoff/store/keys.py).
- The live copy (what callers meet) is one hash of entity → JSON with its own version.
- Every change is written in one MULTI together with its version record, after a WATCH of
  both version counters: two writers can never both act on what they read (the loser
  re-reads and re-checks), so concurrent edits neither lose one another nor undo a delete.

Readers cache the parsed configuration behind a version number: a voice webhook costs one
GET of the live version, whatever the number of destinations.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis

from .keys import ConfigKeys, Keys


def _decode(raw: str | None) -> Any:
    return json.loads(raw) if raw is not None else None


@dataclass(frozen=True)
class ConfigVersion:
    """The routing configuration at one version, as entities (read-only: it is shared)."""

    version: int
    entities: dict[str, Any]


def entities_of_draft(version, destinations: dict, default_id, integration, topics: dict) -> ConfigVersion:
    entities: dict[str, Any] = {f"d:{k}": json.loads(v) for k, v in destinations.items()}
    entities.update({f"t:{k}": json.loads(v) for k, v in topics.items()})
    if default_id:
        entities["default"] = default_id
    if integration:
        entities["integration"] = json.loads(integration)
    return ConfigVersion(int(version or 0), entities)


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    return {key: [before.get(key), after.get(key)] for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)}


def undo(entities: dict[str, Any], records: list[dict]) -> dict[str, Any]:
    """The entities as they were before `records` (newest first) were applied."""
    result = dict(entities)
    for record in records:
        for key, (before, _after) in record["changes"].items():
            if before is None:
                result.pop(key, None)
            else:
                result[key] = before
    return result


_UNKNOWN = object()
# The live version as read in the same round trip as a voice webhook's idempotency claim
# (`Store.answer_once`, web/voice.py): `live()` needs no GET of its own in that request.
# A context variable: each request (thread or greenlet) sees only its own.
_known_live_version: ContextVar[Any] = ContextVar("known_live_version", default=_UNKNOWN)


class ConfigStore:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._draft: ConfigVersion | None = None
        self._live: ConfigVersion | None = None

    # -- reading -----------------------------------------------------------------------
    def _load_draft(self) -> ConfigVersion:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(ConfigKeys.version)
            pipe.hgetall(Keys.destinations)
            pipe.get(Keys.default_destination)
            pipe.get(Keys.integration)
            pipe.hgetall(Keys.topics)
            loaded = entities_of_draft(*pipe.execute())
        if loaded.version:
            self._draft = loaded
        return loaded

    def draft(self) -> ConfigVersion:
        version = int(self.redis.get(ConfigKeys.version) or 0)
        cached = self._draft
        if version and cached is not None and cached.version == version:
            return cached
        return self._load_draft()

    def live(self) -> ConfigVersion:
        """What callers meet. Before any live copy exists (no change recorded yet, or data
        from before versions) the draft is live."""
        raw = _known_live_version.get()
        if raw is _UNKNOWN:
            raw = self.redis.get(ConfigKeys.live_version)
        if raw is None:
            return self.draft()
        cached = self._live
        if cached is not None and cached.version == int(raw):
            return cached
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(ConfigKeys.live_version)
            pipe.hgetall(ConfigKeys.live)
            version, entities = pipe.execute()
        if version is None:
            return self.draft()
        loaded = ConfigVersion(int(version), {k: json.loads(v) for k, v in entities.items()})
        self._live = loaded
        return loaded

    @staticmethod
    def queue_live_version(pipe) -> None:
        """Queue the read `live()` starts with into a pipeline its caller sends anyway."""
        pipe.get(ConfigKeys.live_version)

    @staticmethod
    @contextmanager
    def live_version_known(*raw):
        """Within the block, `live()` takes the version `queue_live_version` read (none
        given: it reads the version itself, as always)."""
        if not raw:
            yield
            return
        token = _known_live_version.set(raw[0])
        try:
            yield
        finally:
            _known_live_version.reset(token)

    def live_version(self) -> int:
        raw = self.redis.get(ConfigKeys.live_version)
        return int(raw) if raw is not None else self.draft().version

    def summaries(self) -> list[dict]:
        return [json.loads(v) for v in self.redis.hgetall(ConfigKeys.summaries).values()]

    def has_version(self, version: int) -> bool:
        return bool(self.redis.hexists(ConfigKeys.summaries, version))

    def records_between(self, after: int, upto: int) -> list[dict]:
        """The full records of versions after..upto, newest first (versions are 1, 2, 3…)."""
        if upto <= after:
            return []
        numbers = list(range(upto, after, -1))
        return [json.loads(raw) for raw in self.redis.hmget(ConfigKeys.versions, numbers) if raw]

    def entities_at(self, version: int) -> dict[str, Any]:
        """The draft's content as it was right after `version` (0: before any change)."""
        draft = self.draft()
        return undo(draft.entities, self.records_between(version, draft.version))

    # -- writing -----------------------------------------------------------------------
    def _queue_draft(self, pipe, changes: dict[str, list]) -> None:
        for key, (_before, after) in changes.items():
            kind, _, ident = key.partition(":")
            if kind in ("d", "t"):
                hash_key = Keys.destinations if kind == "d" else Keys.topics
                if after is None:
                    pipe.hdel(hash_key, ident)
                else:
                    pipe.hset(hash_key, ident, json.dumps(after))
            else:
                single = Keys.default_destination if key == "default" else Keys.integration
                if after is None:
                    pipe.delete(single)
                else:
                    pipe.set(single, after if key == "default" else json.dumps(after))

    @staticmethod
    def _queue_live(pipe, entities: dict[str, Any], version: int) -> None:
        pipe.delete(ConfigKeys.live)
        if entities:
            pipe.hset(ConfigKeys.live, mapping={k: json.dumps(v) for k, v in entities.items()})
        pipe.set(ConfigKeys.live_version, version)

    def change(self, mutate: Callable[[ConfigVersion, dict], Any], *, who: str, at: str,
               go_live: bool, summary: Callable[[dict], str]) -> tuple[Any, dict | None]:
        """Apply `mutate(snapshot, entities)` (it edits `entities`, a copy, and may raise to
        refuse) and record it as a version, atomically over what it read; a concurrent
        writer makes it start again from fresh data. `go_live` also makes it live.
        Returns mutate's result and the version record (None when nothing changed)."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(ConfigKeys.version, ConfigKeys.live_version)
                    version = int(pipe.get(ConfigKeys.version) or 0)
                    cached = self._draft
                    snapshot = cached if version and cached and cached.version == version else None
                    if snapshot is None:
                        snapshot = entities_of_draft(version, pipe.hgetall(Keys.destinations),
                                                     pipe.get(Keys.default_destination),
                                                     pipe.get(Keys.integration), pipe.hgetall(Keys.topics))
                    live_raw = pipe.get(ConfigKeys.live_version)
                    entities = dict(snapshot.entities)
                    result = mutate(snapshot, entities)
                    changes = changes_between(snapshot.entities, entities)
                    if not changes:
                        pipe.reset()
                        return result, None
                    new_version = version + 1
                    record = {"version": new_version, "at": at, "who": who,
                              "summary": summary(changes), "changes": changes}
                    pipe.multi()
                    self._queue_draft(pipe, changes)
                    pipe.set(ConfigKeys.version, new_version)
                    pipe.hset(ConfigKeys.versions, new_version, json.dumps(record))
                    pipe.hset(ConfigKeys.summaries, new_version, json.dumps(
                        {k: v for k, v in record.items() if k != "changes"}))
                    if go_live:
                        self._queue_live(pipe, entities, new_version)
                    elif live_raw is None:
                        # The first change held back from callers: what they met so far
                        # becomes the live copy.
                        self._queue_live(pipe, snapshot.entities, version)
                    pipe.execute()
                    self._draft = ConfigVersion(new_version, entities)
                    if go_live:
                        self._live = self._draft
                    return result, record
                except redis.WatchError:
                    continue

    def promote(self, *, who: str, at: str) -> dict | None:
        """Make the draft live; None when it already is."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(ConfigKeys.version, ConfigKeys.live_version)
                    version = int(pipe.get(ConfigKeys.version) or 0)
                    live_raw = pipe.get(ConfigKeys.live_version)
                    if live_raw is None or int(live_raw) == version:
                        pipe.reset()
                        return None
                    record = _decode(pipe.hget(ConfigKeys.versions, version)) or {"version": version}
                    record.update(promoted_at=at, promoted_by=who)
                    entities = entities_of_draft(version, pipe.hgetall(Keys.destinations),
                                                 pipe.get(Keys.default_destination),
                                                 pipe.get(Keys.integration), pipe.hgetall(Keys.topics)).entities
                    pipe.multi()
                    self._queue_live(pipe, entities, version)
                    pipe.hset(ConfigKeys.versions, version, json.dumps(record))
                    pipe.execute()
                    self._live = ConfigVersion(version, entities)
                    return record
                except redis.WatchError:
                    continue

    # -- test calls ----------------------------------------------------------------------
    def tests(self) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(ConfigKeys.tests).items()}

    def save_test(self, destination_id: str, test: dict) -> None:
        self.redis.hset(ConfigKeys.tests, destination_id, json.dumps(test))

    def finish_test(self, destination_id: str, test_id: str, update: dict) -> dict | None:
        """Record a test call's result, unless a newer test replaced it meanwhile."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(ConfigKeys.tests)
                    current = _decode(pipe.hget(ConfigKeys.tests, destination_id))
                    if not current or current.get("id") != test_id:
                        pipe.reset()
                        return None
                    current.update(update)
                    pipe.multi()
                    pipe.hset(ConfigKeys.tests, destination_id, json.dumps(current))
                    pipe.execute()
                    return current
                except redis.WatchError:
                    continue
