"""The built-in router used when no AI agent is configured: topics and their phrases.

Matching is case- and accent-insensitive on word boundaries ("Réfund!" matches the phrase
"refund", "refunds" does not). Topics win over a request for a person, so "an agent about
billing" reaches billing; the longest matching phrase wins between topics.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from . import versions
from .destinations import slugify
from .errors import ConfirmationRequired, Conflict, NotFound, ValidationFailed
from .models import now_iso, warning
from .services import Services
from .snapshot import RoutingTable

HUMAN_PHRASES = ("agent", "human", "operator", "representative", "speak to someone",
                 "talk to someone", "real person", "a person")
HUMAN_DIGIT = "0"
NEEDS_HUMAN, NO_MATCH = "needs_human", "no_match"


def normalize(text: str) -> str:
    """Lower case, accents dropped, punctuation to spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def contains_phrase(text: str, phrase: str) -> bool:
    wanted = normalize(phrase)
    return bool(wanted) and f" {wanted} " in f" {normalize(text)} "


@dataclass
class Topic:
    id: str
    name: str
    phrases: list[str]
    action: dict[str, Any]
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Route:
    """Where the router sends a turn: a handoff, with the topic that asked for it."""

    destination: str | None
    reason: str
    utterance: str | None
    topic_id: str | None = None


def route_text(text: str | None, digits: str | None, topics: list[Topic]) -> Route | None:
    """The route for one user turn, or None when nothing matched (pure)."""
    best: tuple[int, Topic] | None = None
    for topic in topics:
        for phrase in topic.phrases:
            if text and contains_phrase(text, phrase):
                length = len(normalize(phrase))
                if best is None or length > best[0]:
                    best = (length, topic)
    if best:
        action = best[1].action
        return Route(action.get("destination"), action.get("reason") or best[1].id,
                     action.get("utterance"), best[1].id)
    if (digits or "").strip() == HUMAN_DIGIT or any(contains_phrase(text or "", p) for p in HUMAN_PHRASES):
        return Route(None, NEEDS_HUMAN, None)
    return None


class Topics:
    """The router's topics: part of the routing configuration, so versioned like
    destinations; calls read the live ones (`env="sandbox"`: the draft)."""

    def __init__(self, services: Services, env: str = "live", who: str = "api"):
        self.services = services
        self.env = env
        self.who = who

    def _configuration(self, env: str | None = None) -> RoutingTable:
        return self.services.configuration(env or self.env)

    def all(self, configuration: RoutingTable | None = None) -> list[Topic]:
        configuration = configuration or self._configuration()
        return sorted((Topic(**doc) for doc in configuration.topics), key=lambda t: (t.created_at, t.id))

    def present(self, topic: Topic, configuration: RoutingTable | None = None) -> dict:
        configuration = configuration or self._configuration("sandbox")
        body = topic.to_dict()
        found = []
        wanted = topic.action.get("destination")
        if wanted and configuration.find(wanted) is None:
            found.append(warning("destination_missing",
                                 f"destination {wanted!r} does not exist: this topic hands off to the default"))
        body["warnings"] = found
        return body

    def list(self) -> list[dict]:
        configuration = self._configuration("sandbox")
        return [self.present(t, configuration) for t in self.all(configuration)]

    @staticmethod
    def _find(configuration: RoutingTable, topic_id: str) -> Topic:
        for doc in configuration.topics:
            if doc["id"] == topic_id:
                return Topic(**doc)
        raise NotFound(f"no topic with id {topic_id!r}")

    def get(self, topic_id: str) -> dict:
        return self.present(self._find(self._configuration("sandbox"), topic_id))

    def _check(self, topic: Topic, configuration: RoutingTable) -> None:
        for other in self.all(configuration):
            if other.id != topic.id and other.name.casefold() == topic.name.casefold():
                raise Conflict(f"a topic named {topic.name!r} already exists", {"name": ["already used"]})
        if not any(normalize(p) for p in topic.phrases):
            raise ValidationFailed.field("phrases", "at least one phrase with a word in it")

    def create(self, fields: dict) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Topic:
            base = slugify(fields["name"])
            topic_id, n = base, 2
            while f"t:{topic_id}" in entities:
                topic_id, n = f"{base}-{n}", n + 1
            topic = Topic(id=topic_id, **fields)
            self._check(topic, configuration)
            entities[f"t:{topic.id}"] = topic.to_dict()
            return topic

        return self.present(versions.change(self.services, self.who, mutate), self._configuration("sandbox"))

    def update(self, topic_id: str, fields: dict) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Topic:
            current = self._find(configuration, topic_id)
            topic = Topic(**{**current.to_dict(), **fields, "updated_at": now_iso()})
            self._check(topic, configuration)
            entities[f"t:{topic.id}"] = topic.to_dict()
            return topic

        return self.present(versions.change(self.services, self.who, mutate), self._configuration("sandbox"))

    def delete(self, topic_id: str, confirm: str | None) -> None:
        def mutate(configuration: RoutingTable, entities: dict) -> None:
            topic = self._find(configuration, topic_id)
            if confirm != topic.name:
                raise ConfirmationRequired(f"pass ?confirm= with the topic's exact name ({topic.name!r})")
            entities.pop(f"t:{topic_id}", None)

        versions.change(self.services, self.who, mutate)

    def route(self, text: str | None, digits: str | None = None) -> Route | None:
        return route_text(text, digits, self.all())
