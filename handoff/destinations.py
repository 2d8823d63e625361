"""Managing destinations: the rules of `/v1/destinations` and `/v1/integration` (docs/api.md)."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from . import hours, sip
from .errors import ConfirmationRequired, Conflict, NotFound, ValidationFailed
from .models import Destination, utcnow, warning
from .services import Services
from .snapshot import Configuration
from .store import Conflict as StoreConflict

DEFAULT_INTEGRATION = {
    "provider": "twilio",
    "required_method": None,
    "route_editable": True,
    "sip_headers_supported": True,
}
WARM_MODES = ("warm_message", "warm_accept")


def integration_of(configuration: Configuration) -> dict[str, Any]:
    return {**DEFAULT_INTEGRATION, **(configuration.integration or {})}


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")
    return slug or "destination"


FLEX_WORKFLOW = re.compile(r"^WW[0-9a-fA-F]{32}$")
MAX_SIMULTANEOUS = 10  # Twilio rings at most ten nouns in one <Dial>


def routes_of(destination: Destination) -> list[str]:
    route = destination.route
    return list(route) if isinstance(route, list) else ([route] if route else [])


def constraint_warnings(destination: Destination, integration: dict, now=None) -> list[dict[str, str]]:
    found = []
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


def present(destination: Destination, configuration: Configuration, now=None) -> dict[str, Any]:
    """A destination as the API shows it: stored fields plus default flag and warnings."""
    body = destination.to_dict()
    body["is_default"] = destination.id == configuration.default_id
    found = constraint_warnings(destination, integration_of(configuration), now)
    if configuration.default is None:
        found.insert(0, warning("no_default", "no destination is the default: set one so callers always have a fallback"))
    body["warnings"] = found
    return body


def _check(destination: Destination, configuration: Configuration, sip_domain: str | None,
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
    if destination.fallback is not None:
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
        if not FLEX_WORKFLOW.match(routes[0]):
            raise ValidationFailed.field("route", "a twilio_flex route is a TaskRouter Workflow SID (WW + 32 hex)")
        return
    for route in routes:
        try:
            kind = sip.classify_route(route)
        except sip.RouteError as exc:
            raise ValidationFailed.field("route", f"{route!r}: {exc}") from None
        if kind == "extension" and not sip_domain:
            raise ValidationFailed.field("route", "a bare extension needs SIP_DOMAIN to be configured")


class Destinations:
    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    def configuration(self) -> Configuration:
        return self.services.configuration()

    def present(self, destination: Destination, configuration: Configuration) -> dict:
        return present(destination, configuration, self.services.clock())

    def list(self) -> list[dict]:
        configuration = self.configuration()
        return [self.present(d, configuration) for d in configuration.destinations]

    def _get(self, configuration: Configuration, destination_id: str) -> Destination:
        destination = configuration.by_id().get(destination_id)
        if destination is None:
            raise NotFound(f"no destination with id {destination_id!r}")
        return destination

    def get(self, destination_id: str) -> dict:
        configuration = self.configuration()
        return self.present(self._get(configuration, destination_id), configuration)

    def _free_id(self, configuration: Configuration, name: str) -> str:
        base = slugify(name)
        taken = set(configuration.by_id())
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def _save(self, destination: Destination, *, previous_name: str | None = None,
              new: bool = False) -> None:
        try:
            self.store.save_destination(destination, previous_name=previous_name,
                                        make_default_if_none=new, expect_new=new)
        except StoreConflict as exc:
            if str(exc) == "name":
                raise Conflict(f"a destination named {destination.name!r} already exists",
                               {"name": ["already used by another destination"]}) from None
            raise Conflict(f"destination id {destination.id!r} was just taken; retry") from None

    def create(self, fields: dict[str, Any]) -> dict:
        configuration = self.configuration()
        destination = Destination(id=self._free_id(configuration, fields["name"]), **fields)
        _check(destination, configuration, self.services.config.sip_domain, set(fields))
        if configuration.find(destination.name) is not None:
            raise Conflict(f"a destination named {destination.name!r} already exists",
                           {"name": ["already used by another destination"]})
        self._save(destination, new=True)
        return self.present(destination, self.configuration())

    def update(self, destination_id: str, fields: dict[str, Any]) -> dict:
        configuration = self.configuration()
        current = self._get(configuration, destination_id)
        updated = Destination.from_dict({**current.to_dict(), **fields, "updated_at": utcnow()})
        _check(updated, configuration, self.services.config.sip_domain, set(fields))
        self._save(updated, previous_name=current.name)
        return self.present(updated, self.configuration())

    def duplicate(self, destination_id: str) -> dict:
        configuration = self.configuration()
        source = self._get(configuration, destination_id)
        names = {d.name.casefold() for d in configuration.destinations}
        name, n = f"{source.name} (copy)", 2
        while name.casefold() in names:
            name, n = f"{source.name} (copy {n})", n + 1
        now = utcnow()
        copy = Destination.from_dict({**source.to_dict(), "name": name, "created_at": now,
                                      "updated_at": now, "id": self._free_id(configuration, name)})
        self._save(copy)  # a copy is never made the default
        return self.present(copy, self.configuration())

    def set_default(self, destination_id: str) -> dict:
        self._get(self.configuration(), destination_id)
        self.store.set_default_destination(destination_id)
        configuration = self.configuration()
        return self.present(self._get(configuration, destination_id), configuration)

    def delete(self, destination_id: str, confirm: str | None) -> None:
        destination = self._get(self.configuration(), destination_id)
        if confirm != destination.name:
            raise ConfirmationRequired(
                f"to delete this destination, pass ?confirm= with its exact name ({destination.name!r})"
            )
        self.store.delete_destination(destination)
        self.configuration()  # refresh the outage snapshot now, not at the next read

    def get_integration(self) -> dict:
        return integration_of(self.configuration())

    def put_integration(self, integration: dict) -> dict:
        self.store.save_integration({**DEFAULT_INTEGRATION, **integration})
        return integration_of(self.configuration())
