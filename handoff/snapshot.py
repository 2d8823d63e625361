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
import time
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
        return cls.from_doc(json.loads(text))

    @classmethod
    def from_doc(cls, doc: dict) -> RoutingTable:
        return cls(
            destinations=[Destination.from_dict(d) for d in doc.get("destinations", [])],
            default_id=doc.get("default_id"),
            integration=doc.get("integration"),
            topics=doc.get("topics") or [],
        )


def _signature(path: Path) -> tuple[int, int, int] | None:
    """Which file is at `path` (each atomic write puts a new inode there), or None."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class Snapshot:
    """One process's view of the snapshot. Every process of the deployment (gunicorn
    workers, the rq worker) writes the same file, each when it meets a new live version:
    the file is whatever the last of them saw, which may be newer than what this process
    holds in memory."""

    def __init__(self, data_dir: str):
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._current: RoutingTable | None = None
        self._version = 0
        # The configuration this process last wrote (or read) and which file that was:
        # another signature at the path means another process has written since.
        self._saved: RoutingTable | None = None
        # After a failed write (a full disk, a read-only DATA_DIR) the same configuration
        # is tried again only after a pause: every voice webhook remembers it, and a
        # configuration of thousands of destinations takes milliseconds to serialize.
        self.retry_seconds = 5.0
        self._failed: tuple[RoutingTable, float] | None = None
        self._file: tuple[str, tuple[int, int, int] | None] | None = None

    def remember(self, configuration: RoutingTable, version: int = 0) -> None:
        """Keep `configuration` (live `version`) in memory and on disk. Cheap when it is
        the one already saved: callers may call it for every read."""
        with self._lock:
            self._current, self._version = configuration, version
            if configuration is self._saved:
                return
            if self._failed and self._failed[0] is configuration and time.monotonic() < self._failed[1]:
                return
            text = f'{{"configuration": {configuration.to_json()}, "version": {int(version)}}}'
            digest = hashlib.sha1(text.encode()).hexdigest()
            if self._file == (digest, _signature(self.path)):
                self._saved = configuration
                return
            if self._write(text):
                self._saved, self._file, self._failed = configuration, (digest, _signature(self.path)), None
            else:
                # Only a write that happened counts: a failed one is tried again.
                self._failed = (configuration, time.monotonic() + self.retry_seconds)

    def _write(self, text: str) -> bool:
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
            return True
        except OSError:
            log.exception("could not write the configuration snapshot to %s", self.path)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False

    def last_known(self) -> RoutingTable:
        metrics.snapshot_answer()  # read only to answer a call from it (web/voice.py)
        with self._lock:
            signature = _signature(self.path)
            if self._current is not None and (signature is None or (self._file or ("",))[-1] == signature):
                return self._current
            # Another process wrote the file since this one last did: it may have seen a
            # newer live version than this process (which served no call since).
            try:
                text = self.path.read_text()
                version, configuration = self._parse(text)
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                if self._current is not None:
                    return self._current
                log.error("no usable configuration snapshot at %s (%s): no destination is known",
                          self.path, exc)
                return RoutingTable()
            self._file = (hashlib.sha1(text.encode()).hexdigest(), signature)
            if self._current is None or version >= self._version:
                self._current, self._version, self._saved = configuration, version, configuration
            return self._current

    @staticmethod
    def _parse(text: str) -> tuple[int, RoutingTable]:
        doc = json.loads(text)
        if "configuration" not in doc:  # written before the file carried its version
            return 0, RoutingTable.from_json(text)
        return int(doc["version"]), RoutingTable.from_doc(doc["configuration"])
