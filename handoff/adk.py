"""PolyAI ADK's `config/handoffs.yaml`, in and out (PolyAI's ADK reference page "Handoffs"):

    handoffs:
      - name: escalation_handoff
        description: Transfer to a live agent
        is_default: false
        sip_config:
          method: refer            # invite | refer | bye
          phone_number: "+15551234567"
        sip_headers:
          - key: X-Reason
            value: escalation

Import matches destinations by name: it creates or updates, never deletes, and writes
nothing unless every entry is valid. Export writes the same file back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import yaml
from marshmallow import ValidationError

from .destinations import Destinations
from .destinations import _check as check_destination
from .errors import ValidationFailed
from .models import Destination

METHODS = {"invite": "sip_invite", "refer": "sip_refer", "bye": "sip_bye"}
ADK_METHODS = {ours: theirs for theirs, ours in METHODS.items()}
ENCRYPTIONS = {"TLS/SRTP": "tls_srtp", "UDP/RTP": "udp_rtp"}
ADK_ENCRYPTIONS = {ours: theirs for theirs, ours in ENCRYPTIONS.items()}
# The fields of a destination an ADK entry describes; import leaves every other one alone.
MAPPED = ("name", "description", "method", "route", "encryption", "sip_headers")
SIP_URI = re.compile(r"^sips?:(?P<user>[^@;?]+)@(?P<host>[^;?]+)")


class LoadDestination(Protocol):
    """Checks a destination's fields exactly as the API checks a destination body and
    returns them loaded (marshmallow's ValidationError when one is invalid); `partial`:
    only the fields given, no defaults. The caller passes it in (web/ passes
    schemas.destinations.load_destination), so the domain never imports schemas/."""

    def __call__(self, fields: dict[str, Any], *, partial: bool = False) -> dict[str, Any]: ...


@dataclass
class Change:
    name: str
    action: str  # create | update | unchanged
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {"from", "to"}
    make_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "fields": self.fields,
                "make_default": self.make_default}


# -- export -----------------------------------------------------------------------------
class _AdkDumper(yaml.SafeDumper):
    """Writes the file the way PolyAI's ADK docs show it: list items indented under their
    key, and numbers-as-text (`"+15551234567"`) in double quotes."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str):
    node = dumper.represent_scalar("tag:yaml.org,2002:str", value)
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        node.style = '"'  # plain would read back as a number, a bool or null
    return node


_AdkDumper.add_representer(str, _represent_text)


def _sip_config(destination: Destination) -> dict[str, Any]:
    method = ADK_METHODS[destination.method]
    config: dict[str, Any] = {"method": method}
    if method == "bye":
        return config
    route = destination.route[0] if isinstance(destination.route, list) else destination.route
    matched = SIP_URI.match(route or "")
    if method == "invite" and matched:
        config["phone_number"] = matched["user"]
        config["outbound_endpoint"] = matched["host"]
    else:
        config["phone_number"] = route
    if method == "invite":
        config["outbound_encryption"] = ADK_ENCRYPTIONS[destination.encryption]
    return config


def export_yaml(destinations: Destinations) -> str:
    """Every destination an ADK entry can describe (SIP REFER, INVITE and BYE)."""
    configuration = destinations.configuration()
    entries = [{
        "name": d.name,
        "description": d.description,
        "is_default": d.id == configuration.default_id,
        "sip_config": _sip_config(d),
        "sip_headers": [{"key": h["name"], "value": h["value"]} for h in d.sip_headers],
    } for d in configuration.destinations if d.method in ADK_METHODS]
    return yaml.dump({"handoffs": entries}, Dumper=_AdkDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False)


# -- import -----------------------------------------------------------------------------
def _refuse(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", {where: [message]})


# What a YAML scalar reads as (safe_load): an unquoted phone number or extension reads as
# a number, an unquoted date as a date; either is still text here.
SCALARS = (str, int, float, bool, date)


def _text(value: Any, where: str, what: str) -> str | None:
    """A scalar field as text. A list or mapping is refused, never written out: through
    YAML aliases a body of a few hundred bytes can stand for gigabytes of text."""
    if value is None:
        return None
    if not isinstance(value, SCALARS):
        raise _refuse(where, f"{what} is text, not a list or mapping")
    return str(value)


def _fields_of(entry: Any, where: str) -> tuple[dict[str, Any], bool]:
    """An ADK entry as DestinationInput fields, and whether it asks to be the default."""
    if not isinstance(entry, dict):
        raise _refuse(where, "each handoff is a mapping with name and sip_config")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _refuse(where, "name is required")
    where = f"{where} ({name})"
    config = entry.get("sip_config")
    method = config.get("method") if isinstance(config, dict) else None
    if not isinstance(method, str) or method not in METHODS:
        raise _refuse(where, "sip_config.method must be one of invite, refer, bye")
    fields: dict[str, Any] = {"name": name.strip(),
                              "description": _text(entry.get("description"), where, "description") or "",
                              "method": METHODS[method]}
    number = _text(config.get("phone_number"), where, "sip_config.phone_number")
    endpoint = _text(config.get("outbound_endpoint"), where, "sip_config.outbound_endpoint")
    encryption = config.get("outbound_encryption", "TLS/SRTP")
    if method != "bye":
        if not number:
            raise _refuse(where, f"sip_config.phone_number is required for {method}")
        fields["route"] = number
    if method == "invite":
        if not isinstance(encryption, str) or encryption not in ENCRYPTIONS:
            raise _refuse(where, "sip_config.outbound_encryption must be TLS/SRTP or UDP/RTP")
        fields["encryption"] = ENCRYPTIONS[encryption]
        is_uri = number.lower().startswith(("sip:", "sips:"))
        if endpoint or is_uri:
            # The number at the SIP endpoint, or a SIP URI as it is (PolyAI's "Custom SIP"
            # page: "SIP URI or PSTN number"); TLS signalling is said on the URI too.
            uri = number if is_uri else f"sip:{number}@{endpoint}"
            tls = encryption == "TLS/SRTP" and ";transport=" not in uri.lower()
            fields["route"] = uri + (";transport=tls" if tls else "")
    headers = entry.get("sip_headers") or []
    if not isinstance(headers, list) or not all(isinstance(h, dict) and "key" in h for h in headers):
        raise _refuse(where, "sip_headers is a list of {key, value}")
    fields["sip_headers"] = [{"name": _text(h["key"], where, f"sip_headers[{i}].key"),
                              "value": _text(h.get("value"), where, f"sip_headers[{i}].value") or ""}
                             for i, h in enumerate(headers)]
    is_default = entry.get("is_default", False)
    if not isinstance(is_default, bool):
        raise _refuse(where, "is_default is true or false")
    return fields, is_default


def read_yaml(text: str) -> list[Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _refuse("body", f"not valid YAML: {exc}".splitlines()[0]) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _refuse("body", "nested too deeply for a handoffs.yaml") from None
    if not isinstance(document, dict) or not isinstance(document.get("handoffs"), list):
        raise _refuse("body", "expected a handoffs.yaml: a mapping with a `handoffs` list")
    return document["handoffs"]


def plan_import(destinations: Destinations, text: str,
                load_destination: LoadDestination) -> list[tuple[Change, dict[str, Any], Destination | None]]:
    """Validate every entry against the configuration as it would be; raises
    ValidationFailed naming the first invalid entry. Nothing is written."""
    configuration = destinations.configuration()
    sip_domain = destinations.services.config.sip_domain
    plan, seen, defaults = [], set(), 0
    for index, entry in enumerate(read_yaml(text)):
        where = f"handoffs[{index}]"
        fields, is_default = _fields_of(entry, where)
        where = f"{where} ({fields['name']})"
        if fields["name"].casefold() in seen:
            raise _refuse(where, "the same name appears twice")
        seen.add(fields["name"].casefold())
        defaults += is_default
        if defaults > 1:
            raise _refuse(where, "only one handoff can be the default")
        try:
            loaded = load_destination(fields, partial=True)
        except ValidationError as exc:
            problems = exc.messages if isinstance(exc.messages, dict) else {"entry": exc.messages}
            raise ValidationFailed(f"{where}: invalid {', '.join(sorted(problems))}",
                                   {where: problems}) from None
        current = configuration.find(fields["name"])
        if current is not None and current.name.casefold() != fields["name"].casefold():
            current = None  # a name that happens to equal another destination's id
        if current is None:
            candidate = Destination(id="import-candidate", **{**load_destination({"name": fields["name"]}),
                                                             **loaded})
            changed = set(loaded)
            change = Change(fields["name"], "create", {k: {"from": None, "to": v} for k, v in loaded.items()})
        else:
            candidate = Destination.from_dict({**current.to_dict(), **loaded})
            diff = {k: {"from": getattr(current, k), "to": v} for k, v in loaded.items() if getattr(current, k) != v}
            changed = set(diff)
            change = Change(current.name, "update" if diff else "unchanged", diff)
        try:
            check_destination(candidate, configuration, sip_domain, changed)
        except ValidationFailed as exc:
            raise ValidationFailed(f"{where}: {exc.message}", {where: exc.fields or {"entry": [exc.message]}}) from None
        change.make_default = is_default and (current is None or current.id != configuration.default_id)
        plan.append((change, {k: loaded[k] for k in changed} if current else loaded, current))
    return plan


def import_yaml(destinations: Destinations, text: str, load_destination: LoadDestination, *,
                dry_run: bool = False) -> dict[str, Any]:
    """`{"dry_run", "changes": [{"name", "action", "fields", "make_default"}]}`; with
    `dry_run` (or any invalid entry: ValidationFailed) nothing is written."""
    plan = plan_import(destinations, text, load_destination)
    if not dry_run:
        for change, fields, current in plan:
            if current is None:
                saved = destinations.create(fields)
            elif fields:
                saved = destinations.update(current.id, fields)
            else:
                saved = {"id": current.id}
            if change.make_default:
                destinations.set_default(saved["id"])
    return {"dry_run": dry_run, "changes": [change.to_dict() for change, _, _ in plan]}
