"""Reading TwiML answers the way Twilio would: as XML."""
from __future__ import annotations

import xml.etree.ElementTree as ET


def parse(response_or_text):
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return root


def verbs(root):
    return [child.tag for child in root]
