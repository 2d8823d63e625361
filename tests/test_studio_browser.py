"""The Call handoffs page in real headless Chromium, against the app served over HTTP.

Needs Debian's chromium at /usr/bin/chromium (scripts/test installs it); without it these
tests fail rather than skip, so a missing browser is never mistaken for a pass.
"""
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import API_KEY

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


def delete_dialog_for(page, card):
    open_menu(card)
    card.get_by_role("link", name="Delete…").click()
    dialog = page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_managing_call_handoffs(browser, server, api):
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

    take_screenshots(browser, context, page, api)
    context.close()


def take_screenshots(browser, context, page, api):
    """docs/studio-*.png: a realistic page at desktop and phone widths."""
    front_desk = api.post("/v1/destinations", json={
        "name": "Front desk", "description": "Reception, weekdays 9 to 5", "method": "sip_invite",
        "route": "sip:frontdesk@pbx.example.com", "ring_timeout": 25, "fallback": "billing",
        "sip_headers": [{"name": "X-Reason", "value": "$reason"}, {"name": "X-Caller", "value": "$caller_id"}]})
    assert front_desk.get_json()["is_default"] is True  # created while there was none
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
