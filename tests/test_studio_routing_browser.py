"""Sandbox and Live on the Call handoffs page, in real headless Chromium: the switch, the
diff before "Promote to Live", version history with "Roll back", and each card's
"Preview" and "Test call" — found by labels and roles, as a person would."""
import re

import pytest
import responses
from playwright.sync_api import expect
from rq import SimpleWorker

from tests.helpers import Twilio, add_destination, path
from tests.test_studio_browser import browser, open_menu, open_page, sign_in  # noqa: F401 (fixture)

CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls.json"


@pytest.fixture
def config(config):
    return config.with_overrides(config_promotion=True)


@pytest.fixture
def server(live_server):
    return live_server


def card(page, name):
    return page.locator("li.card").filter(has=page.get_by_role("heading", name=name, exact=True))


def test_sandbox_promote_and_roll_back(browser, server, api):  # noqa: F811
    add_destination(api, "Billing")
    api.post("/v1/config/promote")
    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in(page)
    switch = page.get_by_role("group", name="Configuration shown")
    expect(switch.get_by_role("link", name="Sandbox", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("The sandbox matches Live.")).to_be_visible()

    open_menu(card(page, "Billing"))
    card(page, "Billing").get_by_role("button", name="Duplicate").click()
    expect(page.get_by_text("1 change in the sandbox not yet live.")).to_be_visible()
    expect(card(page, "Billing (copy)")).to_be_visible()

    switch.get_by_role("link", name="Live", exact=True).click()
    expect(page.get_by_role("link", name="Live", exact=True)).to_have_attribute("aria-current", "page")
    expect(card(page, "Billing")).to_be_visible()
    expect(card(page, "Billing (copy)")).to_have_count(0)
    page.get_by_role("link", name="Sandbox", exact=True).click()

    # The diff first, then the promotion.
    page.get_by_role("link", name="Promote to Live…").click()
    expect(page.get_by_role("heading", name="Promote to Live")).to_be_visible()
    diff = page.get_by_role("table", name="Changes from Live to the sandbox")
    expect(diff.get_by_role("row", name=re.compile(r"Billing \(copy\) added"))).to_be_visible()
    page.get_by_role("button", name="Promote to Live").click()
    expect(page.get_by_role("status")).to_contain_text("Version 2 is live")
    expect(page.get_by_text("The sandbox matches Live.")).to_be_visible()
    page.get_by_role("link", name="Live", exact=True).click()
    expect(card(page, "Billing (copy)")).to_be_visible()

    page.get_by_role("link", name="Version history").click()
    history = page.get_by_role("table", name="Versions, newest first")
    newest = history.get_by_role("row").nth(1)
    expect(newest).to_contain_text("page")
    expect(newest).to_contain_text("Live")
    history.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Rolled back to version 1")
    expect(history.get_by_role("row").nth(1)).to_contain_text("Rolled back to version 1")
    assert [d["name"] for d in api.get("/v1/destinations").get_json()["items"]] == ["Billing"]
    context.close()


def test_preview_and_test_call_from_a_card(browser, server, api, app):  # noqa: F811
    add_destination(api, "Desk", method="sip_invite", route="sip:desk@pbx.example.com",
                    sip_headers=[{"name": "X-Customer", "value": "$customer.id"}])
    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in(page)

    open_menu(card(page, "Desk"))
    card(page, "Desk").get_by_role("link", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview Desk")).to_be_visible()
    page.get_by_label("Caller leg").select_option(label="Phone (PSTN)")
    page.get_by_label("Sample state (JSON)").fill('{"customer": {"id": "C-42"}}')
    page.get_by_role("button", name="Preview").click()
    twiml = page.get_by_role("region", name="TwiML")
    expect(twiml).to_contain_text("<Dial")
    expect(twiml).to_contain_text("X-Customer=C-42")
    page.get_by_label("Sample state (JSON)").fill("[1, 2]")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Sample state must be a JSON object")).to_be_visible()
    assert api.get("/v1/handoffs").get_json()["items"] == []

    page.goto("/studio/handoffs")
    open_menu(card(page, "Desk"))
    card(page, "Desk").get_by_role("button", name="Test call").click()
    expect(page.get_by_role("status")).to_contain_text("Test call queued")
    expect(card(page, "Desk")).to_contain_text("Last test call: queued")

    services = app.extensions["handoff"]
    with responses.RequestsMock() as rest:
        rest.add(responses.POST, CALLS_URL, status=201, json={"sid": "CA" + "5" * 32, "status": "queued"})
        SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
        status_url = dict(p.split("=", 1) for p in rest.calls[0].request.body.split("&"))["StatusCallback"]
    from urllib.parse import unquote

    Twilio(app.test_client()).post(path(unquote(status_url)), {
        "CallSid": "CA" + "5" * 32, "CallStatus": "busy", "SipResponseCode": "486"})
    page.reload()
    expect(card(page, "Desk")).to_contain_text("Last test call: busy (SIP 486)")
    context.close()
