"""The Conversations and Insights pages in real headless Chromium, by labels and roles.

Like tests/test_studio_browser.py, needs Debian's chromium at /usr/bin/chromium and fails
(never skips) without it.
"""
import re

from playwright.sync_api import expect

from tests.helpers import API_KEY, call_params, parse
from tests.test_lifecycle import action_path
from tests.test_review_pages import HOSTILE, chat
from tests.test_stats import three_calls
from tests.test_studio_browser import DOCS, browser, open_page, server  # noqa: F401  (fixtures)

FAILED_CALL = "CA" + "2" * 32


def sign_in_to(page, path):
    page.goto(path)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()


def cells(table, heading):
    """The cells of the row whose header cell is `heading`."""
    row = table.locator("tr", has=table.page.get_by_role("rowheader", name=heading, exact=True))
    expect(row).to_have_count(1)
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def known_handoffs(api, twilio):
    """Complaint: one call failed everywhere, one abandoned, one chat resolved by a human.
    Billing question: one call connected at the second destination, outcome pushed."""
    three_calls(api, twilio)
    return chat(api, "complaint", caller="+14155550123", claim=True, outcome="apologised")


def test_reviewing_a_conversation_and_the_figures(browser, server, api, twilio):  # noqa: F811
    known_handoffs(api, twilio)
    live = chat(api, "order_status", shared_id="S-LIVE", caller="+14155550177")
    api.post(f"/v1/conversations/{live}/transcript", json={"role": "user", "text": HOSTILE})
    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in_to(page, "/studio/conversations")
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    listing = page.get_by_role("table", name="Conversations")
    expect(listing.locator("tbody tr")).to_have_count(5)

    # Filter by reason, then by state as well.
    page.get_by_label("Reason").fill("complaint")
    page.get_by_role("button", name="Filter").click()
    expect(listing.locator("tbody tr")).to_have_count(3)
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(listing.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_label("Reason")).to_have_value("complaint")

    # Open it: the metadata panel tells the whole story.
    listing.locator(f'tr[data-conversation="{FAILED_CALL}"]').get_by_role("link").click()
    panel = page.get_by_role("complementary", name="Handoff")
    expect(panel).to_contain_text("complaint")
    expect(panel.locator(".state")).to_have_text("failed")
    attempts = panel.get_by_role("table", name="Attempts").locator("tbody tr")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0)).to_contain_text("Billing")
    expect(attempts.nth(0)).to_contain_text("SIP 405")
    expect(attempts.nth(1)).to_contain_text("No answer")
    expect(attempts.nth(2)).to_contain_text("Reception")

    # Annotate it.
    page.get_by_label("Label").select_option("Escalated unnecessarily")
    page.get_by_label("Note").fill("Billing could not have helped")
    page.get_by_role("button", name="Add annotation").click()
    notes = page.get_by_role("region", name="Annotations")
    expect(notes).to_contain_text("Escalated unnecessarily — Billing could not have helped")
    assert api.get(f"/v1/conversations/{FAILED_CALL}").get_json()["annotations"][0]["label"] == \
        "Escalated unnecessarily"

    # A conversation still waiting for a human updates itself; what people wrote stays text.
    page.goto("/studio/conversations?q=S-LIVE")
    page.get_by_role("table", name="Conversations").get_by_role("link").click()
    transcript = page.get_by_role("region", name="Transcript")
    expect(transcript).to_contain_text(HOSTILE)
    expect(transcript.locator("img")).to_have_count(0)
    expect(page.get_by_text("Live", exact=True)).to_be_visible()
    api.post(f"/v1/conversations/{live}/transcript", json={"role": "human", "text": "Hi, Ana here"})
    expect(transcript).to_contain_text("Hi, Ana here", timeout=15000)

    # Insights: the tables hold exactly the handoffs made above.
    page.get_by_role("navigation", name="Studio").get_by_role("link", name="Insights").click()
    page.get_by_role("link", name="30 days").click()
    expect(page.get_by_role("link", name="30 days")).to_have_attribute("aria-current", "page")
    by_reason = page.get_by_role("table", name="By reason")
    assert cells(by_reason, "complaint") == ["3", "1", "33%", "1", "33%"]
    assert cells(by_reason, "billing_question") == ["1", "1", "100%", "1", "100%"]
    by_destination = page.get_by_role("table", name="By destination")
    assert cells(by_destination, "Overflow")[:4] == ["2", "2", "1", "50%"]  # handoffs, attempts, connected, rate
    assert cells(by_destination, "Billing")[5:] == ["1", "0", "1", "0", "0", "0"]
    expect(page.get_by_role("img", name=re.compile("Handoffs per day"))).to_be_visible()
    context.close()


def page_width(page) -> int:
    """The page's laid-out width once its stylesheets have loaded (a click that navigates
    returns before then; under load the first layout may be unstyled)."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_pages_work_without_javascript_and_on_a_phone(browser, server, api, twilio):  # noqa: F811
    known_handoffs(api, twilio)
    context, page = open_page(browser, server, java_script_enabled=False,
                              viewport={"width": 375, "height": 812}, is_mobile=True)
    sign_in_to(page, "/studio/conversations")
    page.get_by_label("Reason").fill("billing_question")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table", name="Conversations").locator("tbody tr")
    expect(rows).to_have_count(1)
    assert page_width(page) <= 375, "the list scrolls sideways"
    rows.get_by_role("link").click()
    panel = page.get_by_role("complementary", name="Handoff")
    expect(panel.locator(".state")).to_have_text("completed")
    expect(panel).to_contain_text("refunded")
    page.get_by_label("Label").select_option("Resolved by human")
    page.get_by_role("button", name="Add annotation").click()
    expect(page.get_by_role("region", name="Annotations")).to_contain_text("Resolved by human")
    assert page_width(page) <= 375, "the conversation scrolls sideways"
    page.get_by_role("link", name="Insights").click()
    expect(page.get_by_role("img", name=re.compile("Handoffs per day"))).to_be_visible()
    assert cells(page.get_by_role("table", name="By reason"), "billing_question") == ["1", "1", "100%", "1", "100%"]
    assert page_width(page) <= 375, "insights scroll sideways"
    context.close()


def test_screenshots_of_both_pages(browser, server, api, twilio, services):  # noqa: F811
    """docs/review-*.png: a week of realistic handoffs, at desktop and phone widths."""
    from bench.insights import DESTINATIONS, load

    for destination in DESTINATIONS:
        assert api.post("/v1/destinations", json=destination).status_code == 201
    headers = [{"name": "X-Customer-ID", "value": "$customer.id"}, {"name": "X-Reason", "value": "$reason"}]
    for destination in ("billing", "reception"):
        api.patch(f"/v1/destinations/{destination}", json={"sip_headers": headers})
    load(services.store, 600, 7)
    conversation = "CA" + "9" * 32
    call = call_params(conversation)
    twilio.post("/voice/call", call)
    api.patch(f"/v1/conversations/{conversation}", json={"shared_id": "ORDER-4417",
                                                          "state": {"customer": {"id": "C-42"}}})
    for role, text in (("user", "I was charged twice for my order last week."),
                       ("agent", "I can see two charges on order 4417. Let me get a billing specialist."),
                       ("human", "Hi, I'm Sam from billing. I've refunded the second charge.")):
        api.post(f"/v1/conversations/{conversation}/transcript", json={"role": role, "text": text})
    root = parse(twilio.post("/voice/handoff", {**call, "destination": "billing", "reason": "refund_request",
                                                "utterance": "Let me transfer you to a billing specialist."}))
    root = parse(twilio.post(action_path(root), {**call, "ReferCallStatus": "busy", "ReferSipResponseCode": "202",
                                                 "NotifySipResponseCode": "486"}))
    twilio.post(action_path(root), {**call, "ReferCallStatus": "in-progress", "ReferSipResponseCode": "202",
                                    "NotifySipResponseCode": "200"})
    api.post("/v1/handoffs/ORDER-4417/outcome", json={"resolution": "refunded", "resolved_by": "sam"})
    twilio.post("/voice/status", {**call, "CallStatus": "completed"})
    api.post(f"/v1/conversations/{conversation}/annotations", json={"label": "Resolved by human", "author": "ops"})

    context, page = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sign_in_to(page, "/studio/insights")
    expect(page.get_by_role("table", name="By reason")).to_be_visible()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "review-insights.png"), full_page=True)
    page.goto("/studio/conversations")
    page.screenshot(path=str(DOCS / "review-conversations.png"))
    page.goto(f"/studio/conversations/{conversation}")
    expect(page.get_by_role("complementary", name="Handoff")).to_contain_text("refund_request")
    page.screenshot(path=str(DOCS / "review-conversation.png"), full_page=True)

    phone = browser.new_context(base_url=server, storage_state=context.storage_state(),
                                viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    for path, name in (("/studio/insights", "review-insights-mobile.png"),
                       ("/studio/conversations", "review-conversations-mobile.png"),
                       (f"/studio/conversations/{conversation}", None)):
        mobile.goto(path)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= 375, f"{path} scrolls sideways"
        if name:
            mobile.screenshot(path=str(DOCS / name), full_page=name.startswith("review-insights"))
    phone.close()
    context.close()
