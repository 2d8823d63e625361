"""Test calls: ring a destination's route through Twilio with a short spoken message, and
keep the result (answered, busy, no-answer, failed + SIP code) as the destination's
`last_test`. The call is placed by the worker; Twilio's status callback records the end."""
from __future__ import annotations

import uuid
from collections.abc import Callable

from . import sip
from .destinations import routes_of
from .errors import NotFound, ValidationFailed
from .models import Destination, now_iso
from .services import Services
from .twilio_rest import require_credentials

DEFAULT_MESSAGE = ("This is a test call from the handoff service, checking that transfers reach you. "
                   "No action is needed. Goodbye.")
# The caller ID of a test call to a SIP URI: Twilio takes any alphanumeric string there.
SIP_TEST_CALLER = "handoff-test"
# Twilio's final call statuses, as a test result (`completed` means someone answered).
RESULTS = {"completed": "answered", "busy": "busy", "no-answer": "no-answer", "failed": "failed",
           "canceled": "canceled"}


def test_target(destination: Destination, sip_domain: str | None) -> tuple[str, str]:
    """(`sip` | `number`, address) a test call dials: the destination's first route, the
    way a <Dial> would reach it (TLS/SRTP parameters included)."""
    routes = routes_of(destination)
    if destination.method in ("sip_bye", "twilio_flex") or not routes:
        raise ValidationFailed.field("route", f"a {destination.method} destination has no route to call")
    try:
        return sip.dial_target(routes[0], method="sip_invite", sip_domain=sip_domain,
                               encryption=destination.encryption if destination.method == "sip_invite" else "udp_rtp")
    except sip.RouteError as exc:
        raise ValidationFailed.field("route", str(exc)) from None


class TestCalls:
    def __init__(self, services: Services):
        self.services = services

    def request(self, destination_id: str, message: str | None, caller: str | None,
                status_url: Callable[[str], str]) -> dict:
        """Queue a test call; the destination's `last_test` says `queued` until it ends."""
        config = self.services.config
        destination = self.services.configuration("sandbox").by_id().get(destination_id)
        if destination is None:
            raise NotFound(f"no destination with id {destination_id!r}")
        require_credentials(config, "test calls")
        kind, _ = test_target(destination, config.sip_domain)
        if kind == "number" and not caller:
            raise ValidationFailed.field("from", "calling a phone number needs a caller ID: a Twilio "
                                                 "or verified number")
        test = {"id": "TC" + uuid.uuid4().hex, "status": "queued", "sip_code": None,
                "requested_at": now_iso(), "finished_at": None, "detail": None}
        self.services.config_store.save_test(destination_id, test)
        # Retried like every job that asks Twilio (a 5xx or 429 is worth another try); each
        # try is told whether it is the last, and the last records the refusal on the card.
        self.services.enqueue("handoff.jobs.place_test_call", destination_id, test["id"], message or DEFAULT_MESSAGE,
                              caller or SIP_TEST_CALLER, status_url(test["id"]), job_id=f"test-{test['id']}",
                              retry=self.services.job_retry())
        return test

    def placed(self, destination_id: str, test_id: str, call_sid: str) -> None:
        self.services.config_store.finish_test(destination_id, test_id, {"status": "calling",
                                                                         "call_sid": call_sid})

    def refused(self, destination_id: str, test_id: str, detail: str) -> None:
        self.services.config_store.finish_test(destination_id, test_id, {
            "status": "failed", "detail": detail[:300], "finished_at": now_iso()})

    def finished(self, destination_id: str, test_id: str, params: dict[str, str]) -> dict | None:
        """Twilio's status callback of the test call: its final status, and the SIP
        response code it carries for calls to a SIP URI."""
        status = params.get("CallStatus") or ""
        if status not in RESULTS:
            return None  # ringing / in-progress: not the end yet
        try:
            code = int(params.get("SipResponseCode") or 0) or None
        except ValueError:
            code = None
        return self.services.config_store.finish_test(destination_id, test_id, {
            "status": RESULTS[status], "sip_code": code, "finished_at": now_iso()})
