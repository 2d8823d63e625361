"""Twilio's REST API client (https://www.twilio.com/docs/usage/api), made from the config.

Its own module so that the web side (outbound calls) and the worker's jobs share it without
either importing the other."""
from __future__ import annotations

from twilio.rest import Client

from .config import Config
from .errors import Conflict


def twilio_client(config: Config) -> Client:
    return Client(config.twilio_account_sid, config.twilio_auth_token)


def require_credentials(config: Config, what: str) -> None:
    """A 409 naming the settings, before anything is queued or placed: without them Twilio
    cannot be asked at all, which no retry mends (a 503 would say "try again")."""
    if not (config.twilio_account_sid and config.twilio_auth_token):
        raise Conflict(f"{what} need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
