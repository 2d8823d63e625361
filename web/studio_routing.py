"""The Call handoffs page's Sandbox/Live switch, "Promote to Live" (diff first), version
history with "Roll back", and each card's "Preview" and "Test call".

Routes on the studio blueprint (same sign-in, CSRF and error pages), kept apart from the
destination form so that each file has one job."""
from __future__ import annotations

import hashlib
import json

from flask import flash, redirect, render_template, request, url_for

from handoff import jsontext
from handoff.errors import Conflict, NotFound, ValidationFailed
from handoff.handoffs import HandoffRequest, Handoffs
from handoff.test_calls import TestCalls
from handoff.versions import Versions

from .context import public_base_url, services
from .routing import test_status_url
from .studio import bp, card_url
from .studio_review import destination_names

WHO = "page"  # who a version made on the page names
LEGS = {"sip": "SIP (a SIP Domain or trunk)", "pstn": "Phone (PSTN)", "client": "Voice SDK client"}


def routing_status() -> dict:
    """What the switch and the Promote button show: the mode, and what is waiting."""
    svc = services()
    pending = Versions(svc).diff() if svc.config.config_promotion else []
    return {"promotion": svc.config.config_promotion, "pending": len(pending)}


@bp.context_processor
def routing_helpers() -> dict:
    return {"routing_status": routing_status}


def diff_fingerprint(changes: list[dict]) -> str:
    """What the Promote page showed, so that promoting sends live only that."""
    return hashlib.sha256(json.dumps(changes, sort_keys=True, default=str).encode()).hexdigest()


@bp.get("/handoffs/promote")
def promote_page():
    changes = Versions(services()).diff()
    return render_template("studio/promote.html", changes=changes, names=destination_names(),
                           seen=diff_fingerprint(changes))


@bp.post("/handoffs/promote")
def promote():
    if request.form.get("seen") != diff_fingerprint(Versions(services()).diff()):
        flash("The sandbox changed since you looked at it: check what goes live, then promote again.")
        return redirect(url_for("studio.promote_page"), 303)
    try:
        version = Versions(services(), WHO).promote()
    except Conflict as exc:
        flash(exc.message)
    else:
        flash(f"Version {version['version']} is live: callers now meet it.")
    return redirect(url_for("studio.handoffs"), 303)


@bp.get("/handoffs/versions")
def versions_page():
    return render_template("studio/versions.html", versions=Versions(services()).list())


@bp.post("/handoffs/versions/<int:version>/rollback")
def rollback(version):
    try:
        made = Versions(services(), WHO).rollback(version)
    except (Conflict, NotFound) as exc:
        flash(exc.message)
    else:
        flash(f"Rolled back to version {version} (recorded as version {made['version']}); it is live.")
    return redirect(url_for("studio.versions_page"), 303)


@bp.get("/handoffs/<destination_id>/preview")
def preview_page(destination_id):
    svc = services()
    destination = _destination(destination_id)
    leg = request.args.get("leg") if request.args.get("leg") in LEGS else None
    typed = {"leg": leg or "sip", "state": request.args.get("state", ""), "reason": request.args.get("reason", "")}
    result, error = None, None
    if leg:
        try:
            # Strict, as the API reads a preview's state: no NaN, no nesting too deep to parse.
            state = jsontext.loads(typed["state"]) if typed["state"].strip() else {}
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except ValueError:
            error = 'Sample state must be a JSON object, such as {"customer": {"id": "42"}}.'
        else:
            handoff, twiml = Handoffs(svc).preview(
                destination_id, leg, HandoffRequest(reason=typed["reason"][:200] or None),
                state=state, caller=None, called=None, base_url=public_base_url())
            result = {"twiml": _pretty(str(twiml)), "sip_headers": handoff.sip_headers,
                      "warnings": handoff.warnings}
    return render_template("studio/preview.html", destination=destination, legs=LEGS, typed=typed,
                           result=result, error=error), 422 if error else 200


@bp.post("/handoffs/<destination_id>/test_call")
def test_call(destination_id):
    try:
        TestCalls(services()).request(destination_id, None, None,
                                      lambda test_id: test_status_url(destination_id, test_id))
    except (Conflict, ValidationFailed) as exc:
        flash(f"No test call: {exc.message}")
    else:
        flash("Test call queued: its result shows on the card.")
    return redirect(card_url(destination_id), 303)


def _destination(destination_id: str) -> dict:
    found = services().configuration("sandbox").by_id().get(destination_id)
    if found is None:
        raise NotFound(f"no destination with id {destination_id!r}")
    return found.to_dict()


def _pretty(twiml: str) -> str:
    from xml.dom import minidom

    return minidom.parseString(twiml).toprettyxml(indent="  ").split("\n", 1)[1].strip()
