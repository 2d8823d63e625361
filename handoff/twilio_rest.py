"""Twilio's REST API client (https://www.twilio.com/docs/usage/api), made from the config.

Its own module so that the web side (outbound calls) and the worker's jobs share it without
either importing the other. Every error comes out as a `TwilioRestException`, and
`worth_retrying` is the one reading of which ones another try can mend."""
from __future__ import annotations

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .config import Config
from .errors import Conflict

# Seconds to wait for Twilio's answer. twilio-python waits for ever by default: a stalled
# connection would hold a web greenlet, or the worker's only job slot, until rq's job timeout.
TIMEOUT = 10.0
TOO_MANY_REQUESTS = 429


class TwilioUnreachable(TwilioRestException):
    """No HTTP answer from Twilio at all (connection refused, reset, timed out): `status`
    is None, nothing was decided."""


class _HttpClient(TwilioHttpClient):
    def request(self, method, url, *args, **kwargs):
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            raise TwilioUnreachable(None, url, f"Twilio's REST API could not be reached ({type(exc).__name__})",
                                    method=method) from exc


def twilio_client(config: Config) -> Client:
    return Client(config.twilio_account_sid, config.twilio_auth_token, http_client=_HttpClient(timeout=TIMEOUT))


def worth_retrying(exc: TwilioRestException) -> bool:
    """Twilio's 5xx, a 429 (error 20429: "never processed and is always safe to retry",
    https://www.twilio.com/docs/api/errors/20429) and no answer at all may go through on
    another try; any other 4xx (21220, the call is not in progress; 20404) will not."""
    status = exc.status
    return status is None or status == TOO_MANY_REQUESTS or status >= 500


def require_credentials(config: Config, what: str) -> None:
    """A 409 naming the settings, before anything is queued or placed: without them Twilio
    cannot be asked at all, which no retry mends (a 503 would say "try again")."""
    if not (config.twilio_account_sid and config.twilio_auth_token):
        raise Conflict(f"{what} need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
