"""The Call handoffs page in real headless Chromium, against the app served over HTTP.

Needs Debian's chromium at /usr/bin/chromium (scripts/test installs it); without it these
tests fail rather than skip, so a missing browser is never mistaken for a pass.
"""
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.helpers import API_KEY

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server(live_server):
    """The app on a real socket, so the browser speaks HTTP to it like to gunicorn."""
    return live_server


def open_page(browser, server, **options):
    context = browser.new_context(base_url=server, **options)
    context.set_default_timeout(5000)
    return context, context.new_page()


def sign_in(page):
    page.goto("/studio/handoffs")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.fill("#api_key", API_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Call handoffs")).to_be_visible()


def open_menu(card):
    card.locator("summary").click()


def open_advanced(page):
    page.get_by_text("Advanced", exact=True).click()


def card_of(page, name):
    return page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=name, exact=True))


def save(page, button="Save changes"):
    page.get_by_role("button", name=button).click()


def delete_dialog_for(page, card):
    open_menu(card)
    card.get_by_role("link", name="Delete…").click()
    dialog = page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_managing_call_handoffs(browser, server, api, services):
    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in(page)
    expect(page.get_by_text("No handoff destinations yet")).to_be_visible()

    # Add: fields follow the method; header rows come and go.
    page.get_by_role("link", name="Add handoff").click()
    page.fill("#name", "Billing")
    page.fill("#description", "Invoices, refunds and payment plans")
    route, encryption = page.locator("#route"), page.locator("#encryption")
    expect(route).to_be_visible()
    expect(encryption).to_be_hidden()
    page.select_option("#method", "sip_bye")
    expect(route).to_be_hidden()
    page.select_option("#method", "sip_invite")
    expect(route).to_be_visible()
    expect(encryption).to_be_visible()
    page.select_option("#method", "sip_refer")
    expect(encryption).to_be_hidden()
    route.fill("sip:billing@pbx.example.com")
    rows = page.locator("[data-header-row]")
    expect(rows).to_have_count(0)
    page.get_by_role("button", name="Add header").click()
    page.get_by_role("button", name="Add header").click()
    rows.nth(0).locator("[name=header_name]").fill("X-Customer-ID")
    rows.nth(0).locator("[name=header_value]").fill("$customer.id")
    rows.nth(1).locator("[name=header_name]").fill("X-Unwanted")
    rows.nth(1).get_by_role("button", name="Remove").click()
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Add handoff").click()

    billing = page.locator("#destination-billing")
    expect(billing).to_contain_text("Invoices, refunds and payment plans")
    expect(billing).to_contain_text("X-Customer-ID: $customer.id")
    expect(billing.locator(".badge--default")).to_have_text("Default")

    # Duplicate, then make the copy the default.
    open_menu(billing)
    billing.get_by_role("button", name="Duplicate").click()
    copy = page.locator("#destination-billing-copy")
    expect(copy.locator(".card__name")).to_have_text("Billing (copy)")
    expect(copy.locator(".badge--default")).to_have_count(0)
    open_menu(copy)
    copy.get_by_role("button", name="Set as default").click()
    expect(copy.locator(".badge--default")).to_be_visible()
    expect(billing.locator(".badge--default")).to_have_count(0)

    # Delete: the button waits for the exact name, and the server refuses anything else.
    dialog = delete_dialog_for(page, copy)
    confirm, delete = dialog.locator("[name=confirm]"), dialog.get_by_role("button", name="Delete")
    for wrong in ("Billing", "billing (copy)"):
        confirm.fill(wrong)
        expect(delete).to_be_disabled()
    with page.expect_navigation():
        page.evaluate("document.querySelector('#delete-dialog form').requestSubmit()")
    expect(page.get_by_role("alert")).to_contain_text("Not deleted")
    page.goto("/studio/handoffs")
    dialog = delete_dialog_for(page, copy)
    dialog.locator("[name=confirm]").fill("Billing (copy)")
    expect(delete).to_be_enabled()
    delete.click()
    expect(copy).to_have_count(0)
    expect(billing.locator('[data-warning="no_default"]')).to_be_visible()

    # The integration changes under it: the card says why it no longer fits.
    assert api.put("/v1/integration", json={"provider": "twilio", "required_method": "sip_invite"}).status_code == 200
    page.reload()
    expect(billing.locator('[data-warning="method_mismatch"]')).to_contain_text(
        "the integration requires method sip_invite")
    page.get_by_role("link", name="Add handoff").click()
    expect(page.locator("#method")).to_be_disabled()
    expect(page.locator("#encryption")).to_be_visible()

    take_screenshots(browser, context, page, api, services)
    context.close()


def take_screenshots(browser, context, page, api, services):
    """docs/studio-*.png: a realistic page at desktop and phone widths."""
    services.clock = lambda: datetime(2026, 11, 30, 18, 30, tzinfo=UTC)  # a Monday evening
    front_desk = api.post("/v1/destinations", json={
        "name": "Front desk", "description": "Reception, weekdays 9 to 5", "method": "sip_invite",
        "route": "sip:frontdesk@pbx.example.com", "ring_timeout": 25, "fallback": "billing",
        "transfer_mode": "warm_accept", "on_failure": "return_to_agent",
        "hours": {"timezone": "Europe/London", "weekly": {d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                  "closed_dates": ["2026-12-25"]},
        "sip_headers": [{"name": "X-Reason", "value": "$reason"}, {"name": "X-Caller", "value": "$caller_id"}]})
    assert front_desk.get_json()["is_default"] is True  # created while there was none
    api.post("/v1/destinations", json={
        "name": "On-call team", "description": "Nights and weekends: rings both phones", "method": "sip_invite",
        "route": ["+14155550100", "+14155550111"], "encryption": "udp_rtp", "caller_id": "$called_number"})
    page.goto("/studio/handoffs")
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "studio-desktop.png"), full_page=True)

    phone = browser.new_context(base_url=page.url.split("/studio")[0], storage_state=context.storage_state(),
                                viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    mobile.goto("/studio/handoffs")
    expect(mobile.locator("#destination-front-desk")).to_be_visible()
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways on a phone"
    mobile.screenshot(path=str(DOCS / "studio-mobile.png"), full_page=True)
    mobile.goto("/studio/handoffs/new")
    open_advanced(mobile)
    mobile.get_by_role("radio", name="Open at set hours").check()
    mobile.get_by_role("button", name="Add hours on Monday").click()
    mobile.get_by_role("button", name="Add hours on Monday").click()
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375, "the form scrolls sideways on a phone"
    phone.close()


def test_the_page_works_without_javascript(browser, server, api):
    context, page = open_page(browser, server, java_script_enabled=False)
    sign_in(page)
    page.get_by_role("link", name="Add handoff").click()
    rows = page.locator("[data-header-row]")
    expect(rows).to_have_count(3)
    expect(page.locator("#encryption")).to_be_visible()  # nothing is hidden without the script
    page.fill("#name", "Billing")
    page.fill("#route", "sip:billing@pbx.example.com")
    rows.nth(0).locator("[name=header_name]").fill("X-Customer-ID")
    rows.nth(0).locator("[name=header_value]").fill("$customer.id")
    page.get_by_role("button", name="Add handoff").click()
    billing = page.locator("#destination-billing")
    expect(billing).to_contain_text("X-Customer-ID: $customer.id")

    # A refusal comes back as a field error, the input kept.
    page.get_by_role("link", name="Add handoff").click()
    page.fill("#name", "billing")
    page.fill("#route", "sip:other@pbx.example.com")
    page.get_by_role("button", name="Add handoff").click()
    expect(page.locator("#name-error")).to_have_text("already used by another destination")
    expect(page.locator("#route")).to_have_value("sip:other@pbx.example.com")

    # The actions menu is a <details>, and Delete a confirm page.
    page.goto("/studio/handoffs")
    open_menu(billing)
    billing.get_by_role("link", name="Delete…").click()
    page.fill("#confirm", "Billing")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted Billing.")).to_be_visible()
    assert api.get("/v1/destinations").get_json()["items"] == []
    context.close()


def test_every_advanced_field_is_edited_on_the_page(browser, server, api, services):
    services.clock = lambda: datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # Monday, 10:00 in London
    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in(page)
    page.get_by_role("link", name="Add handoff").click()
    page.get_by_label("Name", exact=True).fill("Support")
    page.get_by_label("Method", exact=True).select_option("sip_invite")
    page.get_by_label("Route", exact=True).fill("+14155550100")

    # Simultaneous ring: routes are added, removed and renumbered.
    page.get_by_role("button", name="Add route").click()
    page.get_by_label("Route 2", exact=True).fill("+14155550111")
    page.get_by_role("button", name="Add route").click()
    page.get_by_label("Route 3", exact=True).fill("+14155550122")
    page.get_by_role("button", name="Remove route 2").click()
    expect(page.get_by_label("Route 2", exact=True)).to_have_value("+14155550122")
    expect(page.get_by_label("Route 3", exact=True)).to_have_count(0)

    # "Advanced" starts closed for a new destination; consult options only show for consult.
    transfer_mode = page.get_by_label("Transfer mode", exact=True)
    expect(transfer_mode).to_be_hidden()
    open_advanced(page)
    expect(transfer_mode).to_be_visible()
    expect(page.get_by_label("Hold audio URL")).to_be_hidden()
    page.get_by_label("Detect voicemail", exact=True).check()
    page.get_by_label("Caller ID").fill("$called_number")
    page.get_by_label("Extension").fill("ww12#")
    page.get_by_label("On failure", exact=True).select_option("return_to_agent")
    expect(page.get_by_label("Time zone", exact=True)).to_be_hidden()
    page.get_by_role("radio", name="Open at set hours").check()
    page.get_by_label("Time zone", exact=True).select_option("Europe/London")
    expect(page.get_by_role("group", name="Tuesday")).to_contain_text("Closed")
    page.get_by_role("button", name="Add hours on Monday").click()
    page.get_by_label("Monday opens", exact=True).fill("09:00")
    page.get_by_label("Monday closes", exact=True).fill("17:30")
    page.get_by_role("button", name="Copy Monday to Tue–Fri").click()
    expect(page.get_by_label("Friday closes", exact=True)).to_have_value("17:30")
    page.get_by_role("button", name="Add hours on Saturday").click()
    page.get_by_label("Saturday opens", exact=True).fill("14:00")
    page.get_by_label("Saturday closes", exact=True).fill("10:00")
    page.get_by_label("Closed dates").fill("2026-12-25, 2026-12-26")
    save(page, "Add handoff")

    # Refused: the message sits beside the field, and everything typed is still there.
    expect(page.get_by_role("alert")).to_contain_text("Not saved")
    expect(page.get_by_label("Saturday closes", exact=True)).to_have_accessible_description(
        "14:00–10:00 ends before it starts")
    expect(page.get_by_label("Route 2", exact=True)).to_have_value("+14155550122")
    expect(page.get_by_label("Time zone", exact=True)).to_have_value("Europe/London")
    expect(page.get_by_label("Thursday opens", exact=True)).to_have_value("09:00")
    expect(page.get_by_label("Caller ID")).to_have_value("$called_number")
    page.get_by_label("Saturday opens", exact=True).fill("10:00")
    page.get_by_label("Saturday closes", exact=True).fill("14:00")
    save(page, "Add handoff")
    expect(page.get_by_label("Detect voicemail", exact=True)).to_have_accessible_description(
        "voicemail detection cannot ring several routes at once: a voicemail answering first would cancel every human")
    expect(page.get_by_label("Detect voicemail", exact=True)).to_be_checked()
    page.get_by_label("Detect voicemail", exact=True).uncheck()
    save(page, "Add handoff")

    card = card_of(page, "Support")
    for line in ("Caller ID $called_number", "Dials extension ww12#", "On failure: back to the agent",
                 "Open Mon–Fri 09:00–17:30; Sat 10:00–14:00 Europe/London, open now",
                 "Closed on 2026-12-25, 2026-12-26"):
        expect(card.get_by_role("listitem").filter(has_text=line)).to_have_count(1)
    saved = api.get("/v1/destinations/support").get_json()
    assert saved["route"] == ["+14155550100", "+14155550122"]
    assert (saved["caller_id"], saved["extension"], saved["on_failure"], saved["detect_voicemail"]) == (
        "$called_number", "ww12#", "return_to_agent", False)
    assert saved["hours"] == {"timezone": "Europe/London",
                              "weekly": {**{d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                                         "sat": [["10:00", "14:00"]]},
                              "closed_dates": ["2026-12-25", "2026-12-26"]}

    # Edit: "Advanced" opens by itself; one route, a warm transfer, voicemail detection.
    open_menu(card)
    card.get_by_role("link", name="Edit").click()
    expect(transfer_mode).to_be_visible()
    page.get_by_role("button", name="Remove route 2").click()
    transfer_mode.select_option("warm_accept")
    page.get_by_label("Detect voicemail", exact=True).check()
    page.get_by_role("button", name="Remove Friday range 1").click()
    expect(page.get_by_role("group", name="Friday")).to_contain_text("Closed")
    page.get_by_role("button", name="Remove Saturday range 1").click()
    page.get_by_role("button", name="Add hours on Monday").click()
    page.get_by_label("Monday opens, range 2", exact=True).fill("19:00")
    page.get_by_label("Monday closes, range 2", exact=True).fill("21:00")
    # Fields follow the method: SIP REFER has no voicemail detection, caller ID or second route.
    page.get_by_label("Method", exact=True).select_option("sip_refer")
    for label in ("Detect voicemail", "Caller ID", "Add route"):
        expect(page.get_by_label(label).or_(page.get_by_role("button", name=label))).to_be_hidden()
    page.get_by_label("Method", exact=True).select_option("sip_invite")
    save(page)
    for line in ("Warm transfer with accept", "Detects voicemail",
                 "Open Mon 09:00–17:30, 19:00–21:00; Tue–Thu 09:00–17:30 Europe/London, open now"):
        expect(card.get_by_role("listitem").filter(has_text=line)).to_have_count(1)
    saved = api.get("/v1/destinations/support").get_json()
    assert saved["route"] == "+14155550100"
    assert (saved["transfer_mode"], saved["detect_voicemail"]) == ("warm_accept", True)
    assert saved["hours"]["weekly"] == {"mon": [["09:00", "17:30"], ["19:00", "21:00"]],
                                        **{d: [["09:00", "17:30"]] for d in ("tue", "wed", "thu")}}

    # Consult: hold audio and intro appear for it; always open; no caller ID → a warning.
    open_menu(card)
    card.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Intro")).to_be_hidden()
    transfer_mode.select_option("consult")
    page.get_by_label("Hold audio URL").fill("http://example.com/hold.mp3")
    page.get_by_label("Intro").select_option("public")
    page.get_by_label("Detect voicemail", exact=True).uncheck()
    page.get_by_label("Caller ID").fill("")
    page.get_by_role("radio", name="Always open").check()
    expect(page.get_by_label("Time zone", exact=True)).to_be_hidden()
    save(page)
    expect(page.get_by_label("Hold audio URL")).to_have_accessible_description("hold audio is an https:// URL")
    expect(page.get_by_label("Intro")).to_have_value("public")
    page.get_by_label("Hold audio URL").fill("https://example.com/hold.mp3")
    save(page)
    for line in ("Consult transfer, public intro", "Hold audio https://example.com/hold.mp3"):
        expect(card.get_by_role("listitem").filter(has_text=line)).to_have_count(1)
    expect(card.get_by_role("listitem").filter(has_text="No caller ID")).to_contain_text("no caller_id")
    saved = api.get("/v1/destinations/support").get_json()
    assert (saved["transfer_mode"], saved["hold_audio_url"], saved["intro"]) == (
        "consult", "https://example.com/hold.mp3", "public")
    assert saved["hours"] is None and saved["caller_id"] is None and saved["detect_voicemail"] is False
    assert [w["code"] for w in saved["warnings"]] == ["caller_id_missing"]
    context.close()


def test_advanced_fields_work_without_javascript(browser, server, api):
    context, page = open_page(browser, server, java_script_enabled=False)
    sign_in(page)
    page.get_by_role("link", name="Add handoff").click()
    open_advanced(page)
    # Nothing is hidden without the script: the server judges every field sent.
    for label in ("Route 2", "Hold audio URL", "Intro", "Detect voicemail", "Caller ID", "Extension",
                  "Time zone", "Monday opens", "Closed dates"):
        expect(page.get_by_label(label).first).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Desk")
    page.get_by_label("Route", exact=True).fill("+14155550100")
    transfer_mode = page.get_by_label("Transfer mode", exact=True)
    transfer_mode.select_option("warm_message")  # the method is still SIP REFER
    page.get_by_label("Detect voicemail", exact=True).check()
    page.get_by_label("Extension").fill("ww7")
    page.get_by_label("On failure", exact=True).select_option("hangup")
    page.get_by_role("radio", name="Open at set hours").check()
    page.get_by_label("Time zone", exact=True).select_option("America/New_York")
    page.get_by_label("Monday opens", exact=True).fill("08:00")
    page.get_by_label("Monday closes", exact=True).fill("12:00")
    page.get_by_label("Closed dates").fill("2026-07-04")
    save(page, "Add handoff")

    expect(transfer_mode).to_have_accessible_description(
        "warm_message needs method sip_invite (the whisper plays on the leg Twilio dials)")
    expect(transfer_mode).to_be_visible()  # "Advanced" came back open
    expect(page.get_by_label("Monday closes", exact=True)).to_have_value("12:00")
    expect(page.get_by_label("Extension")).to_have_value("ww7")
    page.get_by_label("Method", exact=True).select_option("sip_invite")
    save(page, "Add handoff")
    expect(card_of(page, "Desk").get_by_role("listitem").filter(has_text="Warm transfer with message")).to_have_count(1)

    card = card_of(page, "Desk")
    open_menu(card)
    card.get_by_role("link", name="Edit").click()
    page.get_by_label("Monday opens, range 2", exact=True).fill("13:00")
    page.get_by_label("Monday closes, range 2", exact=True).fill("17:00")
    transfer_mode.select_option("consult")
    page.get_by_label("Hold audio URL").fill("https://example.com/hold.mp3")
    page.get_by_label("Intro").select_option("public")
    save(page)
    saved = api.get("/v1/destinations/desk").get_json()
    assert (saved["method"], saved["route"], saved["transfer_mode"], saved["detect_voicemail"]) == (
        "sip_invite", "+14155550100", "consult", True)
    assert (saved["extension"], saved["on_failure"], saved["hold_audio_url"], saved["intro"]) == (
        "ww7", "hangup", "https://example.com/hold.mp3", "public")
    assert saved["hours"] == {"timezone": "America/New_York",
                              "weekly": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]},
                              "closed_dates": ["2026-07-04"]}
    context.close()
