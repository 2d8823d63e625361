"""The Conversations and Insights pages as a browser without JavaScript uses them."""
import re
from datetime import date
from html import unescape

import pytest

from tests.helpers import add_destination, call_params
from tests.test_stats import three_calls
from tests.test_studio import Studio

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def studio(app):
    return Studio(app.test_client())


def chat(api, reason, shared_id=None, caller=None, claim=False, outcome=None):
    conversation = api.post("/v1/conversations", json={"channel": "webchat", "shared_id": shared_id,
                                                       "from": caller}).get_json()
    handoff = api.post(f"/v1/conversations/{conversation['id']}/handoff", json={"reason": reason}).get_json()
    if claim:
        api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})
    if outcome:
        api.post(f"/v1/handoffs/{handoff['id']}/outcome", json={"resolution": outcome})
    return conversation["id"]


def listed(page) -> list[str]:
    return re.findall(r'data-conversation="([^"]+)"', page.get_data(as_text=True))


def text_of(page) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True))).split())


def table_rows(page, label) -> dict[str, list[str]]:
    """A figures table as {row heading: [cells]}."""
    html = page.get_data(as_text=True)
    table = re.search(rf'<table class="figures" aria-label="{label}">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S):
        heading = unescape(re.sub(r"<[^>]+>", "", re.search(r'<th scope="row">(.*?)</th>', row, re.S).group(1)))
        rows[heading.strip()] = [unescape(c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    return rows


def test_the_pages_ask_to_sign_in_first(app):
    client = app.test_client()
    for path in ("/studio/conversations", "/studio/insights", "/studio/conversations/CO1"):
        response = client.get(path)
        assert response.status_code == 303 and "/studio/sign-in?next=" in response.headers["Location"]


def test_the_list_is_newest_first_and_filters(studio, api):
    add_destination(api, "Live chat")
    first = chat(api, "complaint", shared_id="S-1", caller="+14155550101")
    second = chat(api, "billing_question", caller="+14155550102", claim=True)
    third = chat(api, "complaint", caller="+14155550103", claim=True, outcome="refunded")
    bare = api.post("/v1/conversations", json={"channel": "sms", "shared_id": "S-BARE"}).get_json()["id"]
    assert listed(studio.get("/studio/conversations")) == [bare, third, second, first]
    assert listed(studio.get("/studio/conversations?reason=complaint")) == [third, first]
    assert listed(studio.get("/studio/conversations?state=claimed")) == [second]
    assert listed(studio.get("/studio/conversations?channel=sms")) == [bare]
    assert listed(studio.get("/studio/conversations?destination=live-chat&state=completed")) == [third]
    assert listed(studio.get("/studio/conversations?q=S-1")) == [first]
    assert listed(studio.get("/studio/conversations?q=S-BARE")) == [bare]  # no handoff: found by reading
    assert listed(studio.get("/studio/conversations?q=555-0102")) == [second]
    assert listed(studio.get("/studio/conversations?to=2000-01-01")) == []
    assert listed(studio.get("/studio/conversations?from=2000-01-01&reason=complaint")) == [third, first]
    refused = studio.get("/studio/conversations?from=yesterday")
    assert refused.status_code == 200 and "From: a date, YYYY-MM-DD" in text_of(refused)
    page = text_of(studio.get("/studio/conversations"))
    assert "Channel" in page and "Destination" in page and "Search" in page


def test_the_list_pages_with_cursors(studio, api, monkeypatch):
    from web import studio_review

    monkeypatch.setattr(studio_review, "PAGE_SIZE", 2)
    ids = [chat(api, "complaint") for _ in range(5)]
    seen, path = [], "/studio/conversations?reason=complaint"
    while path:
        page = studio.get(path)
        seen += listed(page)
        found = re.search(r'href="([^"]+)" rel="next">Older', page.get_data(as_text=True))
        path = unescape(found.group(1)) if found else None
    assert seen == ids[::-1]
    assert listed(studio.get("/studio/conversations?cursor=not-ours")) == ids[::-1][:2]


def test_a_rare_match_is_found_page_by_page(studio, api, monkeypatch):
    from handoff import review

    monkeypatch.setattr(review, "SCAN_BUDGET", 3)  # entries one page may read
    made = [api.post("/v1/conversations", json={"channel": channel}).get_json()["id"]
            for channel in ("sms", "webchat", "webchat", "webchat", "sms", "webchat", "webchat")]
    pages, path = [], "/studio/conversations?channel=sms"
    while path:
        page = studio.get(path)
        pages.append((listed(page), text_of(page)))
        found = re.search(r'href="([^"]+)" rel="next">Older', page.get_data(as_text=True))
        path = unescape(found.group(1)) if found else None
    # Three entries a page, newest first: one match, none (but more to read), the last one.
    assert [rows for rows, _ in pages] == [[made[4]], [], [made[0]]]
    assert "None among the conversations looked at so far" in pages[1][1]


def test_a_conversation_shows_its_handoff_and_escapes_what_people_wrote(studio, api, twilio):
    add_destination(api, "Billing", sip_headers=[{"name": "X-Note", "value": "$note"}])
    sid = "CA" + "5" * 32
    twilio.post("/voice/call", call_params(sid))
    api.patch(f"/v1/conversations/{sid}", json={"state": {"note": "<b>bold</b>"}})
    api.post(f"/v1/conversations/{sid}/transcript", json={"role": "user", "text": HOSTILE})
    twilio.post("/voice/handoff", {**call_params(sid), "destination": "billing", "reason": "<script>x()</script>",
                                   "utterance": "One moment & thanks"})
    page = studio.get(f"/studio/conversations/{sid}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert HOSTILE not in html and "<script>x()" not in html and "<b>bold</b>" not in html
    text = text_of(page)
    assert HOSTILE in text and "<script>x()</script>" in text and "X-Note: <b>bold</b>" in text
    assert "One moment & thanks" in text and "SIP REFER" in text and "Live" in text
    assert "Billing" in text and "transferring" in text


def test_every_attempt_is_listed_with_its_result(studio, api, twilio):
    three_calls(api, twilio)
    text = text_of(studio.get(f"/studio/conversations/CA{'2' * 32}"))
    assert "1 Billing SIP 405 405" in text
    assert "2 Overflow No answer" in text
    assert "3 Reception SIP 503 503" in text


def test_adding_an_annotation(studio, api):
    conversation = chat(api, "complaint")
    path = f"/studio/conversations/{conversation}"
    response = studio.submit(f"{path}/annotations", {"label": "Wrong topic", "note": HOSTILE}, page=path)
    assert response.status_code == 303
    page = studio.get(path)
    assert HOSTILE not in page.get_data(as_text=True)
    assert f"Wrong topic — {HOSTILE}" in text_of(page)
    assert api.get(f"/v1/conversations/{conversation}").get_json()["annotations"][0]["label"] == "Wrong topic"
    studio.submit(f"{path}/annotations", {"label": "Other"}, page=path)
    assert "Write a note to go with" in text_of(studio.get(path))
    assert len(api.get(f"/v1/conversations/{conversation}").get_json()["annotations"]) == 1
    missing = studio.submit("/studio/conversations/nope/annotations", {"label": "Wrong topic"}, page=path)
    assert missing.status_code == 404


def test_an_open_page_learns_that_something_changed(studio, api):
    conversation = chat(api, "complaint")
    version = studio.get(f"/studio/conversations/{conversation}/version").get_json()
    assert version["live"] is True
    api.post(f"/v1/conversations/{conversation}/transcript", json={"role": "human", "text": "Hi, Ana here"})
    assert studio.get(f"/studio/conversations/{conversation}/version").get_json()["version"] != version["version"]
    assert studio.get("/studio/conversations/nope").status_code == 404


def test_insights_tables_match_the_handoffs(studio, api, twilio):
    three_calls(api, twilio)
    chat(api, "complaint", claim=True, outcome="apologised")
    page = studio.get("/studio/insights?period=30d")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    reasons = table_rows(page, "By reason")
    assert reasons["complaint"] == ["3", "1", "33%", "1", "33%"]
    assert reasons["billing_question"] == ["1", "1", "100%", "1", "100%"]
    destinations = table_rows(page, "By destination")
    # handoffs, attempts, connected, rate, median, busy, no answer, SIP error, voicemail, closed, other
    assert destinations["Billing"][:4] == ["3", "3", "0", "0%"]
    assert destinations["Billing"][5:] == ["1", "0", "1", "0", "0", "0"]
    assert destinations["Overflow"][:4] == ["2", "2", "1", "50%"]
    days = table_rows(page, "Handoffs per day")
    assert len(days) == 30 and list(days.values())[-1] == ["4", "2", "1", "1", "0"]


def test_insights_show_the_numbers_the_stats_api_gives_for_the_period(studio, api, twilio):
    """Each destination's connected rate is over its handoffs (chats claimed there make no
    attempt), so the table shows the handoffs it is a share of, as GET /v1/stats does."""
    three_calls(api, twilio)
    chat(api, "complaint", claim=True, outcome="apologised")
    chat(api, None)
    page = studio.get("/studio/insights?period=7d")
    names = {d["id"]: d["name"] for d in api.get("/v1/destinations").get_json()["items"]}
    by_destination = table_rows(page, "By destination")
    stats = api.get("/v1/stats/handoffs?group_by=destination").get_json()["items"]
    assert {names[i["key"]] for i in stats} == set(by_destination)
    for item in stats:
        handoffs, attempts, connected, rate = by_destination[names[item["key"]]][:4]
        assert (handoffs, attempts, connected) == (str(item["handoffs"]), str(item["attempts"]), str(item["connected"]))
        assert rate == f"{round(item['connected_rate'] * 100)}%"
    assert by_destination["Reception"][:4] == ["3", "1", "1", "33%"]
    by_reason = table_rows(page, "By reason")
    stats = api.get("/v1/stats/handoffs?group_by=reason").get_json()["items"]
    assert {i["key"] or "(no reason)" for i in stats} == set(by_reason)
    for item in stats:
        assert by_reason[item["key"] or "(no reason)"] == [
            str(item["handoffs"]), str(item["connected"]), f"{round(item['connected_rate'] * 100)}%",
            str(item["resolved"]), f"{round(item['resolution_rate'] * 100)}%"]
    days = api.get("/v1/stats/handoffs?group_by=day").get_json()["items"]
    assert [[str(d[k]) for k in ("handoffs", "completed", "failed", "abandoned")] for d in days] == [
        cells[:4] for cells in table_rows(page, "Handoffs per day").values()]


def test_a_search_finds_every_conversation_with_the_shared_id_or_the_caller(studio, api):
    """A shared id whose handoffs have an index of their own: the conversations without a
    handoff that carry it are found too, and so is a caller whose number it matches."""
    chatted = chat(api, "complaint", shared_id="S-9")
    called_back = api.post("/v1/conversations", json={"channel": "voice", "shared_id": "S-9"}).get_json()["id"]
    by_number = chat(api, "billing_question", shared_id="4155550100")
    caller = api.post("/v1/conversations", json={"channel": "sms", "from": "+14155550100"}).get_json()["id"]
    assert listed(studio.get("/studio/conversations?q=S-9")) == [called_back, chatted]
    assert listed(studio.get("/studio/conversations?q=4155550100")) == [caller, by_number]
    assert listed(studio.get("/studio/conversations?q=S-9&state=pending")) == [chatted]


def test_from_and_to_read_any_iso_8601_day_they_accept(studio, api):
    """A browser without a date picker sends the day as typed: 20261126 or a week date is
    the same day as 2026-11-26, not a text compared with it."""
    made = chat(api, "complaint")
    today = api.get(f"/v1/conversations/{made}").get_json()["started_at"][:10]
    year, week, weekday = date.fromisoformat(today).isocalendar()
    for typed in (today, today.replace("-", ""), f"{year}-W{week:02d}-{weekday}"):
        page = studio.get(f"/studio/conversations?from={typed}&to={typed}")
        assert listed(page) == [made], typed
        assert "a date, YYYY-MM-DD" not in text_of(page)
