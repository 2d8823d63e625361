"""Sandbox and Live: versions of the routing configuration, promotion, rollback, and a
test number on /voice/call?env=sandbox meeting the draft end to end."""
import pytest

from app import create_app
from handoff.config import Config
from tests.helpers import API_KEY, Api, Twilio, add_destination, call_params, parse, path, verbs

LIVE_CALL = "CA" + "1" * 32
SANDBOX_CALL = "CA" + "2" * 32


@pytest.fixture
def config(config):
    """CONFIG_PROMOTION=on, and labelled keys (HANDOFF_API_KEYS=ops=<key>,ci=<key>)."""
    return config.with_overrides(config_promotion=True,
                                 api_key_labels=(("ops", API_KEY), ("ci", "second-key")))


def refer_target(root):
    return root.find("Refer/Sip").text


def handoff_on(twilio, call_sid, query="", **fields):
    twilio.post(f"/voice/call{query}", call_params(call_sid))
    return parse(twilio.post("/voice/handoff", call_params(call_sid, **fields)))


def test_a_draft_change_reaches_a_sandbox_call_but_no_live_caller(api, twilio):
    add_destination(api, "Billing")
    assert api.post("/v1/config/promote").status_code == 200
    api.patch("/v1/destinations/billing", json={"route": "sip:billing-new@pbx.example.com", "fallback": None})
    add_destination(api, "Backup")
    assert api.patch("/v1/destinations/billing", json={"fallback": "backup"}).status_code == 200

    live = handoff_on(twilio, LIVE_CALL)
    assert refer_target(live).startswith("sip:billing@pbx.example.com")
    sandbox = handoff_on(twilio, SANDBOX_CALL, "?env=sandbox")
    assert refer_target(sandbox).startswith("sip:billing-new@pbx.example.com")

    # The refused transfer's callback continues each call on its own configuration: the
    # sandbox call to the draft-only fallback, the live call has nothing left.
    failed = {"ReferCallStatus": "failed", "ReferSipResponseCode": "486"}
    onward = parse(twilio.post(path(sandbox.find("Refer").get("action")), call_params(SANDBOX_CALL, **failed)))
    assert refer_target(onward).startswith("sip:backup@pbx.example.com")
    ended = parse(twilio.post(path(live.find("Refer").get("action")), call_params(LIVE_CALL, **failed)))
    assert verbs(ended) == ["Say", "Hangup"]


def test_the_router_of_a_sandbox_call_uses_draft_topics(api, twilio, services):
    from handoff.topics import Topics

    add_destination(api, "Billing")
    add_destination(api, "Sales")
    api.post("/v1/config/promote")
    Topics(services, who="ops").create({"name": "Sales", "phrases": ["buy"], "action": {
        "type": "handoff", "destination": "sales", "reason": "sales", "utterance": None}})
    turn = {"SpeechResult": "I want to buy something"}
    twilio.post("/voice/call?env=sandbox", call_params(SANDBOX_CALL))
    sandbox = parse(twilio.post("/voice/router?turn=1", call_params(SANDBOX_CALL, **turn)))
    assert refer_target(sandbox).startswith("sip:sales@")
    twilio.post("/voice/call", call_params(LIVE_CALL))
    live = parse(twilio.post("/voice/router?turn=1", call_params(LIVE_CALL, **turn)))
    assert verbs(live)[0] == "Gather"  # no such topic live: asked again


def test_versions_diff_promote_and_rollback(api, twilio):
    add_destination(api, "Billing")
    api.post("/v1/destinations/billing/default")  # already the default: no version
    api.patch("/v1/destinations/billing", json={"ring_timeout": 45, "method": "sip_invite"},
              headers={"Authorization": "Bearer second-key"})
    versions = api.get("/v1/config/versions").get_json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["who"] == "ci" and versions[1]["who"] == "ops"
    assert versions[0]["summary"] == "Changed Billing (method, ring_timeout)"
    assert versions[1]["summary"].startswith("Added destination Billing")
    assert not any(v["live"] for v in versions)  # nothing promoted yet: callers meet version 0

    changes = api.get("/v1/config/diff").get_json()["changes"]
    assert {"destination": "billing", "field": None, "from": None} .items() <= changes[0].items()
    assert {"destination": "billing", "field": "is_default", "from": False, "to": True} in changes
    between = api.get("/v1/config/diff?from=1&to=2").get_json()["changes"]
    assert {"destination": "billing", "field": "ring_timeout", "from": 30, "to": 45} in between
    assert {"destination": "billing", "field": "method", "from": "sip_refer", "to": "sip_invite"} in between

    promoted = api.post("/v1/config/promote")
    assert promoted.status_code == 200
    assert promoted.get_json() == {**promoted.get_json(), "version": 2, "live": True}
    again = api.post("/v1/config/promote")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert api.get("/v1/config/diff").get_json() == {"changes": []}
    assert handoff_on(twilio, LIVE_CALL).find("Dial") is not None

    rolled = api.post("/v1/config/rollback", json={"version": 1})
    assert rolled.status_code == 200
    assert rolled.get_json()["version"] == 3 and rolled.get_json()["live"] is True
    versions = api.get("/v1/config/versions").get_json()["items"]
    assert versions[0]["summary"] == "Rolled back to version 1" and versions[0]["who"] == "ops"
    assert [v["live"] for v in versions] == [True, False, False]
    # Live and the draft both hold version 1's content again.
    assert api.get("/v1/destinations/billing").get_json()["method"] == "sip_refer"
    assert verbs(handoff_on(twilio, "CA" + "3" * 32)) == ["Refer"]
    assert api.post("/v1/config/rollback", json={"version": 3}).status_code == 409
    assert api.post("/v1/config/rollback", json={"version": 99}).status_code == 404
    assert api.get("/v1/config/diff?from=banana").status_code == 422


def test_deleting_and_the_integration_are_versions_too(api):
    add_destination(api, "Billing")
    api.put("/v1/integration", json={"provider": "sip_trunk"})
    api.delete("/v1/destinations/billing?confirm=Billing")
    summaries = [v["summary"] for v in api.get("/v1/config/versions").get_json()["items"]]
    assert summaries[0].startswith("Deleted destination Billing")
    assert summaries[1] == "Changed the integration"
    changes = api.get("/v1/config/diff?from=0&to=2").get_json()["changes"]
    assert {"destination": None, "field": "integration.provider", "from": None, "to": "sip_trunk"} in changes


def test_redis_down_answers_from_the_last_live_version(app_on_own_valkey, own_valkey):
    """A draft read through the API must not become what callers meet during an outage."""
    app = app_on_own_valkey
    api = Api(app.test_client())
    add_destination(api, "Billing")
    api.post("/v1/config/promote")
    api.patch("/v1/destinations/billing", json={"route": "sip:draft@pbx.example.com"})
    assert api.get("/v1/destinations").status_code == 200
    twilio = Twilio(app.test_client())
    twilio.post("/voice/call?env=sandbox", call_params(SANDBOX_CALL))
    own_valkey.stop()
    # The same process, and a fresh one that only has the snapshot its data directory holds.
    for serving in (app, create_app(app.extensions["handoff"].config)):
        root = parse(Twilio(serving.test_client()).post("/voice/handoff", call_params(LIVE_CALL)))
        assert refer_target(root).startswith("sip:billing@pbx.example.com")


def test_labelled_api_keys():
    config = Config.from_env({"HANDOFF_API_KEYS": "ops=k1-secret,plainkey,abc="})
    assert config.api_keys == ("k1-secret", "plainkey", "abc=")
    assert config.key_label("k1-secret") == "ops"
    assert config.key_label("plainkey").startswith("key-") and "plain" not in config.key_label("plainkey")
    assert config.key_label("nope") is None
    assert Config.from_env({"CONFIG_PROMOTION": "on"}).config_promotion is True
    assert Config.from_env({}).config_promotion is False


def test_review_pages_name_a_live_destination_deleted_from_the_draft(app, api, twilio):
    """Callers still reach a destination deleted only in the sandbox: the Conversations and
    Insights pages name it, and the Destination filter offers it."""
    from tests.test_review_pages import table_rows
    from tests.test_studio import Studio

    add_destination(api, "Billing Desk")
    assert api.post("/v1/config/promote").status_code == 200
    handoff_on(twilio, LIVE_CALL, reason="refund")
    assert api.delete("/v1/destinations/billing-desk?confirm=Billing Desk").status_code == 204
    studio = Studio(app.test_client())
    attempts = studio.get(f"/studio/conversations/{LIVE_CALL}").get_data(as_text=True)
    assert '<td data-label="Destination">Billing Desk</td>' in attempts
    assert "Billing Desk" in table_rows(studio.get("/studio/insights"), "By destination")
    listing = studio.get("/studio/conversations").get_data(as_text=True)
    assert '<option value="billing-desk">Billing Desk</option>' in listing


def test_promote_makes_live_only_the_changes_the_page_showed(app, api):
    import re

    from tests.test_studio import Studio

    studio = Studio(app.test_client())
    add_destination(api, "Billing")
    shown = studio.get("/studio/handoffs/promote").get_data(as_text=True)
    assert "Billing" in shown
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', shown))
    add_destination(api, "Sales")  # someone else changes the sandbox meanwhile
    refused = studio.client.post("/studio/handoffs/promote", data=form)
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/studio/handoffs/promote")
    assert api.get("/v1/config/diff").get_json()["changes"]  # nothing went live
    assert "The sandbox changed since" in studio.get(refused.headers["Location"]).get_data(as_text=True)
    again = studio.get("/studio/handoffs/promote").get_data(as_text=True)
    assert "Sales" in again
    promoted = studio.client.post("/studio/handoffs/promote",
                                  data=dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', again)))
    assert promoted.status_code == 303 and api.get("/v1/config/diff").get_json()["changes"] == []


def test_a_polyai_return_on_a_sandbox_call_picks_its_destination_from_the_draft(app, api, twilio):
    """A PolyAI function's return without `type` goes to the first destination using its SIP
    method, in the configuration the call runs on: for a test number's call, the draft."""
    from handoff import Conversation, from_polyai_return

    add_destination(api, "Desk")
    assert api.post("/v1/config/promote").status_code == 200
    add_destination(api, "Bridge", method="sip_invite", route="sip:bridge@pbx.example.com")  # the draft only
    twilio.post("/voice/call?env=sandbox", call_params(SANDBOX_CALL))
    conv = Conversation(SANDBOX_CALL, services=app.extensions["handoff"])
    record = from_polyai_return(conv, {"handoff": {"reason": "escalate", "invite": {}}})
    assert record["destination"]["name"] == "Bridge"
