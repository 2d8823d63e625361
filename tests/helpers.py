"""Reading TwiML answers the way Twilio would: as XML."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET


def parse(response_or_text):
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return root


def verbs(root):
    return [child.tag for child in root]


BASE_URL = "https://handoff.example.com"


def add_destination(api, name="Billing", **fields):
    """Create a destination through the API (route sip:<name>@pbx.example.com unless given)."""
    user = re.sub(r"[^a-z0-9]+", "", name.lower())
    body = {"name": name, "route": f"sip:{user}@pbx.example.com", **fields}
    response = api.post("/v1/destinations", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def path(url):
    """The path (and query) of a callback URL the service gave Twilio."""
    assert url.startswith(BASE_URL), url
    return url[len(BASE_URL):]


def latest_handoff(api, conversation_id):
    return api.get(f"/v1/conversations/{conversation_id}").get_json()["handoff"]
