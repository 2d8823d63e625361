"""Twilio's REST API client (https://www.twilio.com/docs/usage/api), made from the config.

Its own module so that the web side (outbound calls) and the worker's jobs share it without
either importing the other."""
from __future__ import annotations

from twilio.rest import Client

from .config import Config


def twilio_client(config: Config) -> Client:
    return Client(config.twilio_account_sid, config.twilio_auth_token)
