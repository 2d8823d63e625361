"""Managing destinations: the rules of `/v1/destinations` and `/v1/integration` (docs/api.md)."""
from __future__ import annotations

import base64
import bisect
import json
import re
import unicodedata
from typing import Any

from . import hours, jsontext, sip, versions
from .errors import ConfirmationRequired, Conflict, NotFound, ValidationFailed
from .models import Destination, now_iso, warning
from .services import Services
from .snapshot import RoutingTable

DEFAULT_INTEGRATION = {
    "provider": "twilio",
    "required_method": None,
    "route_editable": True,
    "sip_headers_supported": True,
}
WARM_MODES = ("warm_message", "warm_accept")


def integration_of(configuration: RoutingTable) -> dict[str, Any]:
    return {**DEFAULT_INTEGRATION, **(configuration.integration or {})}


# The longest name a destination may have (the API refuses longer: schemas/destinations.py).
NAME_LIMIT = 100


def copy_name(name: str, n: int) -> str:
    """The name of the n-th copy: "<name> (copy)", then "<name> (copy 2)"...; a long name
    is cut so the copy still fits NAME_LIMIT and can be sent back as it was read."""
    suffix = " (copy)" if n == 1 else f" (copy {n})"
    return name[:NAME_LIMIT - len(suffix)] + suffix


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")
    return slug or "destination"


# Ids a destination never gets: /v1/destinations/export and /v1/destinations/import are
# routes of their own (web/handoffs_yaml.py), so a destination with one of these ids could
# not be read at /v1/destinations/<id>. A name that slugifies to one gets `export-2`.
ROUTE_WORDS = frozenset({"export", "import"})

# The patterns below are used with fullmatch: their `$` also matches before a final newline.
FLEX_WORKFLOW = re.compile(r"^WW[0-9a-fA-F]{32}$")
# What <Number sendDigits> accepts: DTMF digits and `w`, a half-second pause (Number page).
EXTENSION_DIGITS = re.compile(r"^[0-9*#w]{1,64}$")
TEMPLATE = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_.]*\}|[A-Za-z_][A-Za-z0-9_.]*)")
MAX_SIMULTANEOUS = 10  # Twilio rings at most ten nouns in one <Dial>


def routes_of(destination: Destination) -> list[str]:
    route = destination.route
    return list(route) if isinstance(route, list) else ([route] if route else [])


def dials_a_number(destination: Destination) -> bool:
    """Whether any route of this destination reaches a phone number over <Dial><Number>."""
    if destination.method != "sip_invite" and destination.transfer_mode != "consult":
        return False
    for route in routes_of(destination):
        try:
            if sip.classify_route(route) == "number":
                return True
        except sip.RouteError:
            pass
    return False


def constraint_warnings(destination: Destination, integration: dict, now=None,
                        default_caller_id: str | None = None) -> list[dict[str, str]]:
    found = []
    if not destination.caller_id and not default_caller_id and dials_a_number(destination):
        # From a SIP or Client caller Twilio needs a Twilio or verified number as the
        # caller ID of the new leg (Dial page; errors 13214 and 13227).
        found.append(warning("caller_id_missing",
                             "no caller_id and no DEFAULT_CALLER_ID: calls from SIP or Client callers "
                             "to this number will fail (Twilio needs a Twilio or verified number)"))
    if now is not None and destination.hours and not hours.is_open(destination.hours, now):
        found.append(warning("closed", "closed now (outside its hours): handoffs skip it"))
    required = integration.get("required_method")
    if required and destination.method != required:
        found.append(warning("method_mismatch", f"the integration requires method {required}"))
    if not integration.get("route_editable", True) and destination.route:
        found.append(warning("route_not_editable", "the integration manages routes; this route is ignored"))
    if not integration.get("sip_headers_supported", True) and destination.sip_headers:
        found.append(warning("sip_headers_unsupported", "the integration does not pass SIP headers"))
    return found


def present(destination: Destination, configuration: RoutingTable, now=None,
            default_caller_id: str | None = None) -> dict[str, Any]:
    """A destination as the API shows it: stored fields plus default flag and warnings."""
    body = destination.to_dict()
    body["is_default"] = destination.id == configuration.default_id
    found = constraint_warnings(destination, integration_of(configuration), now, default_caller_id)
    if configuration.default is None:
        found.insert(0, warning("no_default", "no destination is the default: set one so callers always have a fallback"))
    body["warnings"] = found
    return body


def _check(destination: Destination, configuration: RoutingTable, sip_domain: str | None,
           changed: set[str]) -> None:
    """Cross-field rules; raises ValidationFailed naming the field."""
    integration = integration_of(configuration)
    required = integration.get("required_method")
    if required and destination.method != required and "method" in changed:
        raise ValidationFailed.field("method", f"the integration requires method {required}")
    needs_route = destination.method in ("sip_refer", "sip_invite", "twilio_flex")
    if not integration.get("route_editable", True):
        if "route" in changed and destination.route:
            raise ValidationFailed.field("route", "the integration does not allow editing routes")
    elif needs_route and not destination.route:
        raise ValidationFailed.field("route", f"a route is required for method {destination.method}")
    if destination.route and destination.method != "sip_bye":
        _check_routes(destination, sip_domain)
    if destination.hours is not None:
        found = hours.problems(destination.hours)
        if found:
            raise ValidationFailed("hours: " + "; ".join(found), {"hours": found})
    if destination.sip_headers:
        if not integration.get("sip_headers_supported", True) and "sip_headers" in changed:
            raise ValidationFailed.field("sip_headers", "the integration does not support SIP headers")
        static = {h["name"]: h["value"] for h in destination.sip_headers}
        if len({n.lower() for n in static}) != len(destination.sip_headers):
            raise ValidationFailed.field("sip_headers", "each header name may appear once")
        if sip.headers_length(static) > sip.HEADERS_LIMIT:
            raise ValidationFailed.field(
                "sip_headers",
                f"these headers take {sip.headers_length(static)} characters in the SIP URI; "
                f"Twilio refuses {sip.HEADERS_LIMIT + 1} or more",
            )
    if destination.transfer_mode in WARM_MODES and destination.method != "sip_invite":
        raise ValidationFailed.field("transfer_mode", f"{destination.transfer_mode} needs method sip_invite "
                                     "(the whisper plays on the leg Twilio dials)")
    if destination.detect_voicemail and destination.method != "sip_invite":
        raise ValidationFailed.field("detect_voicemail", "voicemail detection needs method sip_invite")
    _check_dialling(destination)
    # Only a fallback being set is checked: deleting a destination leaves the ones that fall
    # back to it as they are (the chain goes on to the default, handoff/transfers.py), and
    # they stay editable.
    if destination.fallback is not None and "fallback" in changed:
        if destination.fallback == destination.id:
            raise ValidationFailed.field("fallback", "a destination cannot fall back to itself")
        if destination.fallback not in configuration.by_id():
            raise ValidationFailed.field("fallback", f"no destination with id {destination.fallback!r}")


def _check_routes(destination: Destination, sip_domain: str | None) -> None:
    routes = routes_of(destination)
    if isinstance(destination.route, list):
        if destination.method != "sip_invite":
            raise ValidationFailed.field("route", "a list of routes (simultaneous ring) needs method sip_invite")
        if not 1 <= len(routes) <= MAX_SIMULTANEOUS:
            raise ValidationFailed.field("route", f"ring 1 to {MAX_SIMULTANEOUS} routes at once")
    if destination.method == "twilio_flex":
        if not FLEX_WORKFLOW.fullmatch(routes[0]):
            raise ValidationFailed.field("route", "a twilio_flex route is a TaskRouter Workflow SID (WW + 32 hex)")
        return
    for route in routes:
        try:
            kind = sip.classify_route(route)
        except sip.RouteError as exc:
            raise ValidationFailed.field("route", f"{route!r}: {exc}") from None
        if kind == "extension" and not sip_domain:
            raise ValidationFailed.field("route", "a bare extension needs SIP_DOMAIN to be configured")


def _check_dialling(destination: Destination) -> None:
    """The rules of the leg Twilio dials: simultaneous ring, secure media, caller ID,
    extension and the consult options."""
    routes = routes_of(destination) if destination.method != "sip_bye" else []
    if destination.transfer_mode == "consult" and destination.method not in ("sip_refer", "sip_invite"):
        raise ValidationFailed.field("transfer_mode", "consult needs a route to call (method sip_refer or sip_invite)")
    if isinstance(destination.route, list) and len(routes) > 1:
        # Twilio hangs up every other leg when the first one connects (Sip and Number
        # pages): a voicemail answering after one ring would cancel every human.
        if destination.transfer_mode in WARM_MODES + ("consult",):
            raise ValidationFailed.field("transfer_mode", f"{destination.transfer_mode} cannot ring several routes "
                                         "at once: the first leg to answer (even a voicemail) cancels the others")
        if destination.detect_voicemail:
            raise ValidationFailed.field("detect_voicemail", "voicemail detection cannot ring several routes at "
                                         "once: a voicemail answering first would cancel every human")
    if destination.method == "sip_invite" and destination.encryption == "tls_srtp":
        for route in routes:
            transport = sip.uri_param(route, "transport")
            if transport is not None and transport.lower() != "tls":
                # SRTP keys travel in the SDP: over UDP/TCP signalling they are in clear text
                # (Twilio's Secure Media page pairs secure=true with transport=tls).
                raise ValidationFailed.field("encryption", f"tls_srtp needs ;transport=tls, but {route!r} "
                                             f"uses transport={transport}: use udp_rtp or a TLS route")
    if destination.caller_id is not None and not (sip.E164.fullmatch(destination.caller_id)
                                                  or TEMPLATE.fullmatch(destination.caller_id)):
        raise ValidationFailed.field("caller_id", "a caller ID is an E.164 number (+15551234567) "
                                     "or one template variable such as $called_number")
    if destination.extension is not None:
        if not EXTENSION_DIGITS.fullmatch(destination.extension):
            raise ValidationFailed.field("extension", "an extension is DTMF digits (0-9, *, #) and w "
                                         "(a half-second pause), e.g. ww1234#")
        if not routes or any(_kind(route) != "number" for route in routes):
            raise ValidationFailed.field("extension", "an extension needs a phone-number (E.164) route")
    if destination.hold_audio_url is not None and not re.fullmatch(r"https://[^\s]+", destination.hold_audio_url):
        raise ValidationFailed.field("hold_audio_url", "hold audio is an https:// URL")


def _kind(route: str) -> str | None:
    try:
        return sip.classify_route(route)
    except sip.RouteError:
        return None


class Destinations:
    """Destination management. Every write runs inside `versions.change`: atomic over
    what it read (a concurrent write makes it re-read and re-check) and recorded as a
    version naming `who` made it."""

    def __init__(self, services: Services, who: str = "api"):
        self.services = services
        self.who = who

    @property
    def store(self):
        return self.services.store

    def configuration(self) -> RoutingTable:
        """What the API and the page edit: the sandbox draft (live too unless CONFIG_PROMOTION)."""
        return self.services.configuration("sandbox")

    def present(self, destination: Destination, configuration: RoutingTable,
                tests: dict | None = None) -> dict:
        body = present(destination, configuration, self.services.clock(),
                       self.services.config.default_caller_id)
        if tests is None:
            tests = self.services.config_store.tests()
        body["last_test"] = tests.get(destination.id)
        return body

    def list(self) -> list[dict]:
        configuration = self.configuration()
        tests = self.services.config_store.tests()
        return [self.present(d, configuration, tests) for d in configuration.destinations]

    def page(self, limit: int, cursor: str | None, env: str = "sandbox") -> tuple[list[dict], str | None]:
        """Up to `limit` destinations after `cursor` (oldest first), and the next cursor."""
        configuration = self.services.configuration(env)
        ordered = configuration.destinations
        start = 0
        if cursor:
            position = decode_cursor(cursor)
            start = bisect.bisect_right([(d.created_at, d.id) for d in ordered], position)
        chosen = ordered[start:start + limit]
        tests = self.services.config_store.tests()
        more = start + limit < len(ordered)
        return ([self.present(d, configuration, tests) for d in chosen],
                encode_cursor(chosen[-1]) if more and chosen else None)

    def names(self, env: str = "sandbox") -> dict[str, str]:
        return {d.id: d.name for d in self.services.configuration(env).destinations}

    def _get(self, configuration: RoutingTable, destination_id: str) -> Destination:
        destination = configuration.by_id().get(destination_id)
        if destination is None:
            raise NotFound(f"no destination with id {destination_id!r}")
        return destination

    def get(self, destination_id: str) -> dict:
        configuration = self.configuration()
        return self.present(self._get(configuration, destination_id), configuration)

    def _free_id(self, configuration: RoutingTable, name: str) -> str:
        base = slugify(name)
        taken = configuration.by_id()
        candidate, n = base, 2
        while candidate in taken or candidate in ROUTE_WORDS:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    @staticmethod
    def _name_free(configuration: RoutingTable, destination: Destination) -> None:
        holder = configuration.find_name(destination.name)
        if holder is not None and holder.id != destination.id:
            raise Conflict(f"a destination named {destination.name!r} already exists",
                           {"name": ["already used by another destination"]})

    def _done(self, destination: Destination) -> dict:
        """The destination as written, against the configuration now (a concurrent
        delete may already have removed it: the write still happened, so no 404)."""
        return self.present(destination, self.configuration())

    def create(self, fields: dict[str, Any]) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Destination:
            destination = Destination(id=self._free_id(configuration, fields["name"]), **fields)
            _check(destination, configuration, self.services.config.sip_domain, set(fields))
            self._name_free(configuration, destination)
            entities[f"d:{destination.id}"] = destination.to_dict()
            if not entities.get("default"):
                entities["default"] = destination.id  # the first one becomes the default
            return destination

        return self._done(versions.change(self.services, self.who, mutate))

    def update(self, destination_id: str, fields: dict[str, Any]) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Destination:
            current = self._get(configuration, destination_id)
            updated = Destination.from_dict({**current.to_dict(), **fields, "updated_at": now_iso()})
            _check(updated, configuration, self.services.config.sip_domain, set(fields))
            self._name_free(configuration, updated)
            entities[f"d:{destination_id}"] = updated.to_dict()
            return updated

        return self._done(versions.change(self.services, self.who, mutate))

    def duplicate(self, destination_id: str) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Destination:
            source = self._get(configuration, destination_id)
            name, n = copy_name(source.name, 1), 2
            while configuration.find_name(name) is not None:
                name, n = copy_name(source.name, n), n + 1
            now = now_iso()
            copy = Destination.from_dict({**source.to_dict(), "name": name, "created_at": now,
                                          "updated_at": now, "id": self._free_id(configuration, name)})
            entities[f"d:{copy.id}"] = copy.to_dict()  # a copy is never made the default
            return copy

        return self._done(versions.change(self.services, self.who, mutate))

    def set_default(self, destination_id: str) -> dict:
        def mutate(configuration: RoutingTable, entities: dict) -> Destination:
            destination = self._get(configuration, destination_id)
            entities["default"] = destination_id
            return destination

        return self._done(versions.change(self.services, self.who, mutate))

    def delete(self, destination_id: str, confirm: str | None) -> None:
        def mutate(configuration: RoutingTable, entities: dict) -> None:
            destination = self._get(configuration, destination_id)
            if confirm != destination.name:
                raise ConfirmationRequired(
                    f"to delete this destination, pass ?confirm= with its exact name ({destination.name!r})"
                )
            entities.pop(f"d:{destination_id}", None)
            if entities.get("default") == destination_id:
                entities.pop("default")

        versions.change(self.services, self.who, mutate)

    def get_integration(self) -> dict:
        return integration_of(self.configuration())

    def put_integration(self, integration: dict) -> dict:
        def mutate(_configuration: RoutingTable, entities: dict) -> None:
            entities["integration"] = {**DEFAULT_INTEGRATION, **integration}

        versions.change(self.services, self.who, mutate)
        return integration_of(self.configuration())


def encode_cursor(destination: Destination) -> str:
    text = json.dumps([destination.created_at, destination.id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        # jsontext: a crafted cursor nested a thousand deep raises RecursionError in json.
        position = jsontext.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position):
            return position[0], position[1]
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed.field("cursor", "not a cursor this listing issued")
