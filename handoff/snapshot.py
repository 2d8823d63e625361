"""The last destination configuration this process saw, for when Redis is unreachable.

Kept in memory and in a JSON file under DATA_DIR (written atomically, only when it
changes), so a process that never reached Redis itself — a fresh gunicorn worker during
an outage — still knows where to send callers.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics
from .models import Destination

log = logging.getLogger(__name__)

FILE_NAME = "config-snapshot.json"


@dataclass
class RoutingTable:
    destinations: list[Destination] = field(default_factory=list)
    default_id: str | None = None
    integration: dict | None = None
    topics: list[dict] = field(default_factory=list)
    # Indexes built on first use: a configuration is shared, read-only, by every request
    # until the next version, so a lookup must not cost a pass over 2,000 destinations.
    _ids: dict[str, Destination] | None = field(default=None, init=False, repr=False, compare=False)
    _names: dict[str, Destination] | None = field(default=None, init=False, repr=False, compare=False)

    def by_id(self) -> dict[str, Destination]:
        if self._ids is None:
            self._ids = {d.id: d for d in self.destinations}
        return self._ids

    @property
    def default(self) -> Destination | None:
        return self.by_id().get(self.default_id) if self.default_id else None

    def find(self, ref: str | None) -> Destination | None:
        """A destination by id, or by name (case-insensitive)."""
        if not ref:
            return None
        ref = ref.strip()
        by_id = self.by_id()
        if ref in by_id:
            return by_id[ref]
        return self.find_name(ref)

    def find_name(self, name: str) -> Destination | None:
        """The destination with this name (case-insensitive), or None."""
        if self._names is None:
            self._names = {d.name.casefold(): d for d in self.destinations}
        return self._names.get(name.strip().casefold())

    def to_json(self) -> str:
        return json.dumps(
            {
                "destinations": [d.to_dict() for d in self.destinations],
                "default_id": self.default_id,
                "integration": self.integration,
                "topics": self.topics,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RoutingTable:
        doc = json.loads(text)
        return cls(
            destinations=[Destination.from_dict(d) for d in doc.get("destinations", [])],
            default_id=doc.get("default_id"),
            integration=doc.get("integration"),
            topics=doc.get("topics") or [],
        )


class Snapshot:
    def __init__(self, data_dir: str):
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._current: RoutingTable | None = None
        self._digest: str | None = None

    def remember(self, configuration: RoutingTable) -> None:
        text = configuration.to_json()
        digest = hashlib.sha1(text.encode()).hexdigest()
        with self._lock:
            self._current = configuration
            if digest == self._digest:
                return
            self._digest = digest
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except OSError:
            log.exception("could not write the configuration snapshot to %s", self.path)

    def last_known(self) -> RoutingTable:
        metrics.snapshot_answer()  # read only to answer a call from it (web/voice.py)
        with self._lock:
            if self._current is not None:
                return self._current
        try:
            configuration = RoutingTable.from_json(self.path.read_text())
        except (OSError, ValueError):
            log.error("no configuration snapshot at %s: no destination is known", self.path)
            return RoutingTable()
        with self._lock:
            self._current = configuration
        return configuration
