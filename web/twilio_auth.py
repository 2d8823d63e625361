"""Trusting Twilio: every webhook must carry a valid X-Twilio-Signature."""
from __future__ import annotations

import functools
import hmac
import logging

from flask import Response, request
from twilio.request_validator import RequestValidator

from .context import requested_url, services

log = logging.getLogger(__name__)


def signature_valid() -> bool:
    config = services().config
    if not config.twilio_validate:
        return True
    if not config.twilio_auth_token:
        log.error("TWILIO_AUTH_TOKEN is not set: refusing a Twilio webhook it cannot verify")
        return False
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not signature.isascii():
        # A signature is base64: anything else is forged (and hmac cannot compare it).
        return False
    # URL fragments (connection overrides such as #rc=2) never reach the server and are not
    # signed (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides), so the
    # URL as received is exactly what was signed.
    params = request.form if request.method == "POST" else {}
    validator = RequestValidator(config.twilio_auth_token)
    url = requested_url()
    # The URL exactly as requested matches in the common case: one HMAC. Only a mismatch
    # pays for validate(), which also tries the URL with and without its port (Twilio
    # drops the port of https voice URLs before signing: "Webhooks security",
    # https://www.twilio.com/docs/usage/webhooks/webhooks-security).
    if hmac.compare_digest(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


def twilio_signed(view):
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not signature_valid():
            log.warning("refused %s %s: bad or missing X-Twilio-Signature", request.method, request.path)
            return Response(status=403)
        return view(*args, **kwargs)

    return checked
