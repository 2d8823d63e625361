"""Versions of the routing configuration: record every change, compare, promote, roll back.

Every write to destinations, topics or the integration goes through `change`, which records
it as a version (who, when, what) in the same transaction. With CONFIG_PROMOTION off each
version is live at once; with it on, versions pile up in the sandbox draft until promoted.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import Conflict, NotFound
from .models import now_iso
from .services import Services
from .snapshot import RoutingTable
from .store.configuration import ConfigStore, ConfigVersion, undo

# Fields every edit changes: not worth a line in a diff.
QUIET_FIELDS = ("updated_at",)


def summarize(changes: dict[str, list]) -> str:
    """One line for a version: what it did, in words."""
    parts = []
    for key, (before, after) in changes.items():
        kind = {"d": "destination", "t": "topic"}.get(key.partition(":")[0])
        if kind:
            name = (after or before or {}).get("name", key)
            if before is None:
                parts.append(f"added {kind} {name}")
            elif after is None:
                parts.append(f"deleted {kind} {name}")
            else:
                fields = [f for f in sorted(set(before) | set(after))
                          if f not in QUIET_FIELDS and before.get(f) != after.get(f)]
                parts.append(f"changed {name} ({', '.join(fields) or 'no visible field'})")
        elif key == "default":
            parts.append(f"default: {after}" if after else "no default")
        else:
            parts.append("changed the integration")
    text = "; ".join(parts)
    return (text[:1].upper() + text[1:])[:300]


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs, field by field: `{"destination", "field", "from", "to"}`.

    A destination added or deleted is one row with `field` null and the whole destination
    as `to` or `from`; the default shows as `is_default` on the destinations it moved
    between; topics carry `topic` (and `destination` null), the integration
    `field: "integration.<name>"`."""
    rows: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        kind, _, ident = key.partition(":")
        if key == "default":
            for was, now, who in ((True, False, old), (False, True, new)):
                if who:
                    rows.append({"destination": who, "field": "is_default", "from": was, "to": now})
            continue
        if key == "integration":
            old, new = old or {}, new or {}
            rows += [{"destination": None, "field": f"integration.{f}", "from": old.get(f), "to": new.get(f)}
                     for f in sorted(set(old) | set(new)) if old.get(f) != new.get(f)]
            continue
        owner = {"destination": ident} if kind == "d" else {"destination": None, "topic": ident}
        if old is None or new is None:
            rows.append({**owner, "field": None, "from": old, "to": new})
            continue
        rows += [{**owner, "field": f, "from": old.get(f), "to": new.get(f)}
                 for f in sorted(set(old) | set(new)) if f not in QUIET_FIELDS and old.get(f) != new.get(f)]
    return rows


def change(services: Services, who: str, mutate: Callable[[RoutingTable, dict], Any]) -> Any:
    """Apply one change to the draft as a new version (live at once unless CONFIG_PROMOTION):
    `mutate(configuration, entities)` checks against the draft as parsed (once per version)
    and edits `entities`, or raises to refuse."""
    result, record = services.config_store.change(
        lambda snapshot, entities: mutate(services.parsed("sandbox", snapshot), entities),
        who=who, at=now_iso(), go_live=not services.config.config_promotion, summary=summarize)
    if record is not None:
        services.configuration()  # refresh the outage snapshot now, not at the next call
    return result


class Versions:
    def __init__(self, services: Services, who: str = "api"):
        self.services = services
        self.who = who

    @property
    def store(self) -> ConfigStore:
        return self.services.config_store

    def _item(self, record: dict, live: int) -> dict:
        return {"version": record["version"], "at": record["at"], "who": record["who"],
                "summary": record["summary"], "live": record["version"] == live}

    def list(self) -> list[dict]:
        live = self.store.live_version()
        records = sorted(self.store.summaries(), key=lambda r: r["version"], reverse=True)
        return [self._item(r, live) for r in records]

    def _entities(self, ref: str | int | None, default: str) -> dict[str, Any]:
        ref = default if ref in (None, "") else ref
        if ref == "live":
            return self.store.live().entities
        if ref == "sandbox":
            return self.store.draft().entities
        version = int(ref)
        if version and not self.store.has_version(version):
            raise NotFound(f"no version {version}")
        return self.store.entities_at(version)

    def diff(self, from_: str | int | None = None, to: str | int | None = None) -> list[dict]:
        return diff(self._entities(from_, "live"), self._entities(to, "sandbox"))

    def promote(self) -> dict:
        record = self.store.promote(who=self.who, at=now_iso())
        if record is None:
            raise Conflict("nothing to promote: the sandbox draft is already live")
        self.services.configuration()  # the outage snapshot follows what callers meet
        return self._item(record, record["version"])

    def rollback(self, version: int) -> dict:
        """That version's content becomes the draft and live, recorded as a new version."""
        if not self.store.has_version(version):
            raise NotFound(f"no version {version}")

        def restore(content: ConfigVersion, entities: dict) -> None:
            newer = self.store.records_between(version, content.version)
            entities.clear()
            entities.update(undo(content.entities, newer))

        _, record = self.store.change(restore, who=self.who, at=now_iso(), go_live=True,
                                      summary=lambda _c: f"Rolled back to version {version}")
        if record is None:
            # Already that content: make it live all the same (with promotion on, the
            # draft may match while live does not).
            record = self.store.promote(who=self.who, at=now_iso())
            if record is None:
                raise Conflict(f"version {version} is already what callers meet")
        self.services.configuration()
        return self._item(record, record["version"])
