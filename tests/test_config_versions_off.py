"""CONFIG_PROMOTION=off (the default): every change is live at once, and still a version."""
from tests.helpers import add_destination, call_params, parse


def test_changes_are_live_at_once_and_recorded(api, twilio):
    add_destination(api, "Billing")
    api.patch("/v1/destinations/billing", json={"route": "sip:new@pbx.example.com"})
    root = parse(twilio.post("/voice/handoff", call_params()))
    assert root.find("Refer/Sip").text.startswith("sip:new@pbx.example.com")
    versions = api.get("/v1/config/versions").get_json()["items"]
    assert [(v["version"], v["live"]) for v in versions] == [(2, True), (1, False)]
    assert versions[0]["who"].startswith("key-")  # an unlabelled key: a hash, not the key
    assert api.get("/v1/config/diff").get_json() == {"changes": []}
    assert api.post("/v1/config/promote").status_code == 409

    rolled = api.post("/v1/config/rollback", json={"version": 1}).get_json()
    assert rolled["version"] == 3 and rolled["live"]
    root = parse(twilio.post("/voice/handoff", call_params("CA" + "8" * 32)))
    assert root.find("Refer/Sip").text.startswith("sip:billing@pbx.example.com")
