"""The Call handoffs page (/studio/handoffs) as a browser without JavaScript uses it."""
import re
from datetime import UTC

import pytest

from tests.helpers import API_KEY

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(page) -> str:
    return TOKEN.search(page.get_data(as_text=True)).group(1)


def sign_in(client, key=API_KEY):
    form = client.get("/studio/sign-in")
    return client.post("/studio/sign-in", data={"api_key": key, "csrf_token": csrf(form)})


class Studio:
    """A signed-in browser: GETs pages, and POSTs forms with the token the page carries."""

    def __init__(self, client):
        self.client = client
        sign_in(client)

    def get(self, path):
        return self.client.get(path)

    def submit(self, path, fields=None, page=None):
        token = csrf(self.client.get(page or "/studio/handoffs"))
        return self.client.post(path, data={"csrf_token": token, **(fields or {})})

    def add(self, **fields):
        form = {"name": "Billing", "method": "sip_refer", "route": "sip:billing@pbx.example.com", **fields}
        return self.submit("/studio/handoffs/new", form, page="/studio/handoffs/new")


@pytest.fixture
def studio(app):
    return Studio(app.test_client())


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="field__error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else ""


# -- signing in -----------------------------------------------------------------------
def test_the_page_asks_to_sign_in_first(app):
    client = app.test_client()
    response = client.get("/studio/handoffs")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/studio/sign-in?next=/studio/handoffs")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and 'name="api_key"' in page.get_data(as_text=True)


def test_a_wrong_key_is_refused_and_the_page_stays_closed(app):
    client = app.test_client()
    response = sign_in(client, key="not-a-key")
    assert response.status_code == 401
    assert "not an API key this service accepts" in response.get_data(as_text=True)
    assert client.get("/studio/handoffs").status_code == 303


def test_signing_in_returns_to_the_page_asked_for(app):
    client = app.test_client()
    form = client.get("/studio/sign-in?next=/studio/handoffs/new")
    response = client.post("/studio/sign-in", data={"api_key": "second-key", "csrf_token": csrf(form),
                                                    "next": "/studio/handoffs/new"})
    assert response.status_code == 303 and response.headers["Location"] == "/studio/handoffs/new"
    assert client.get("/studio/handoffs").status_code == 200


def test_sign_in_never_redirects_off_site(app):
    client = app.test_client()
    form = client.get("/studio/sign-in")
    response = client.post("/studio/sign-in", data={"api_key": API_KEY, "csrf_token": csrf(form),
                                                    "next": "//evil.example.com/studio/"})
    assert response.headers["Location"] == "/studio/handoffs"


def test_the_session_cookie_is_locked_down_and_holds_no_key(app):
    client = app.test_client()
    response = sign_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    stored = app.session_interface.get_signing_serializer(app).loads(value)
    assert API_KEY not in str(stored)

    https = app.test_client()
    form = https.get("/studio/sign-in", base_url="https://handoff.example.com")
    response = https.post("/studio/sign-in", base_url="https://handoff.example.com",
                          data={"api_key": API_KEY, "csrf_token": csrf(form)})
    assert "Secure" in response.headers["Set-Cookie"]


def test_removing_a_key_signs_its_sessions_out(app, config):
    client = app.test_client()
    sign_in(client, key="second-key")
    assert client.get("/studio/handoffs").status_code == 200
    app.extensions["handoff"].config = config.with_overrides(api_keys=(API_KEY,))
    assert client.get("/studio/handoffs").status_code == 303


def test_signing_out(studio):
    response = studio.submit("/studio/sign-out")
    assert response.status_code == 303
    assert studio.get("/studio/handoffs").status_code == 303


# -- CSRF -----------------------------------------------------------------------------
def test_forms_without_the_csrf_token_are_refused(studio, api):
    form = {"name": "Billing", "route": "sip:billing@pbx.example.com"}
    assert studio.client.post("/studio/handoffs/new", data=form).status_code == 400
    refused = studio.client.post("/studio/handoffs/new", data={**form, "csrf_token": "forged"})
    assert refused.status_code == 400 and "Form refused" in refused.get_data(as_text=True)
    assert api.get("/v1/destinations").get_json()["items"] == []


def test_signing_in_needs_the_csrf_token_too(app):
    client = app.test_client()
    client.get("/studio/sign-in")
    assert client.post("/studio/sign-in", data={"api_key": API_KEY}).status_code == 400
    assert client.get("/studio/handoffs").status_code == 303


def test_every_action_needs_the_token(studio, api):
    destination = api.post("/v1/destinations", json={"name": "Billing", "route": "1001"}).get_json()
    for action in ("duplicate", "default", "delete"):
        path = f"/studio/handoffs/{destination['id']}/{action}"
        assert studio.client.post(path, data={"confirm": "Billing"}).status_code == 400
    assert len(api.get("/v1/destinations").get_json()["items"]) == 1


# -- what the page shows --------------------------------------------------------------
def test_names_and_values_are_escaped(studio, api):
    api.post("/v1/destinations", json={
        "name": '<script>alert("name")</script>', "description": "<img src=x onerror=alert(1)>",
        "route": "sip:a@b.example.com", "sip_headers": [{"name": "X-Note", "value": "<b>$reason</b>"}]})
    html = studio.get("/studio/handoffs").get_data(as_text=True)
    assert '<script>alert("name")' not in html and "<img src=x" not in html and "<b>$reason" not in html
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_cards_show_fields_default_and_warnings(studio, api):
    api.post("/v1/destinations", json={
        "name": "Billing", "description": "Invoices and refunds", "method": "sip_invite",
        "route": "sip:billing@pbx.example.com", "encryption": "udp_rtp", "ring_timeout": 45,
        "sip_headers": [{"name": "X-Customer-ID", "value": "$customer.id"}]})
    api.post("/v1/destinations", json={"name": "Sales", "route": "+14155550111", "fallback": "billing"})
    api.put("/v1/integration", json={"provider": "sip_trunk", "required_method": "sip_refer",
                                     "sip_headers_supported": False})
    html = studio.get("/studio/handoffs").get_data(as_text=True)
    billing = html[html.index('id="destination-billing"'):html.index('id="destination-sales"')]
    for text in ("Billing", "Invoices and refunds", "SIP INVITE", "sip:billing@<wbr>pbx.example.com",
                 "X-Customer-ID: $customer.id", "UDP + RTP", "45 s", "Default",
                 "Method mismatch", "the integration requires method sip_refer",
                 "SIP headers unsupported", "the integration does not pass SIP headers"):
        assert text in billing, text
    sales = html[html.index('id="destination-sales"'):]
    assert "Default</span>" not in sales and 'data-warning="method_mismatch"' not in sales
    assert "Fallback</dt><dd>Billing" in sales and "Set as default" in sales
    assert "requires SIP REFER" in html and "no SIP headers" in html


def test_deleting_the_default_warns_on_every_card(studio, api):
    api.post("/v1/destinations", json={"name": "Billing", "route": "1001"})
    api.post("/v1/destinations", json={"name": "Sales", "route": "1002"})
    studio.submit("/studio/handoffs/billing/delete", {"confirm": "Billing"})
    html = studio.get("/studio/handoffs").get_data(as_text=True)
    assert html.count('data-warning="no_default"') == 1 and "No default" in html
    assert "no destination is the default" in html


# -- adding and editing ---------------------------------------------------------------
def test_adding_a_destination(studio, api):
    response = studio.add(description="Invoices", header_name=["X-Customer-ID", "", ""],
                          header_value=["$customer.id", "", ""], fallback="")
    assert response.status_code == 303 and response.headers["Location"] == "/studio/handoffs#destination-billing"
    page = studio.get("/studio/handoffs").get_data(as_text=True)
    assert "Added Billing." in page and 'id="destination-billing"' in page
    created = api.get("/v1/destinations/billing").get_json()
    assert created["sip_headers"] == [{"name": "X-Customer-ID", "value": "$customer.id"}]
    assert created["is_default"] is True and created["description"] == "Invoices"


def test_the_add_form_offers_blank_header_rows_and_the_methods(studio):
    html = studio.get("/studio/handoffs/new").get_data(as_text=True)
    assert html.count('name="header_name"') == 3 + 1  # three blank rows plus the JS template
    assert 'value="sip_refer" selected' in html
    assert all(f'value="{m}"' in html for m in ("sip_refer", "sip_invite", "sip_bye"))


def test_a_twilio_flex_destination_is_added_on_the_page(studio, api):
    html = studio.get("/studio/handoffs/new").get_data(as_text=True)
    assert '<option value="twilio_flex">Twilio Flex</option>' in html and "Workflow SID" in html
    refused = studio.add(name="Flex", method="twilio_flex", route="sip:flex@pbx.example.com")
    assert refused.status_code == 422
    assert "TaskRouter Workflow SID" in field_error(refused.get_data(as_text=True), "route")
    assert studio.add(name="Flex", method="twilio_flex", route="WW" + "0" * 32).status_code == 303
    saved = api.get("/v1/destinations/flex").get_json()
    assert (saved["method"], saved["route"]) == ("twilio_flex", "WW" + "0" * 32)


def test_field_errors_are_shown_next_to_the_field_with_the_input_kept(studio, api):
    response = studio.add(name="Billing", description="kept <as typed>", route="sip:a b",
                          header_name=["Customer", "X-Ok"], header_value=["1", "$reason"],
                          ring_timeout="3")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Not saved" in html
    assert 'value="kept' not in html and "kept &lt;as typed&gt;</textarea>" in html
    assert 'value="sip:a b"' in html and 'value="Customer"' in html and 'value="$reason"' in html
    assert "header names must look like X-Name" in html
    # the schema refused the headers first; the route is the service's to judge next
    fixed = studio.add(route="sip:a b")
    assert "may not contain spaces" in field_error(fixed.get_data(as_text=True), "route")
    assert api.get("/v1/destinations").get_json()["items"] == []


def test_a_taken_name_is_a_field_error(studio, api):
    api.post("/v1/destinations", json={"name": "Billing", "route": "1001"})
    response = studio.add(name="BILLING")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "name") == "already used by another destination"
    assert 'value="BILLING"' in response.get_data(as_text=True)


def test_ring_timeout_and_encryption_only_count_for_sip_invite(studio, api):
    studio.add(name="Refer", ring_timeout="3", encryption="udp_rtp")
    assert api.get("/v1/destinations/refer").get_json()["encryption"] == "tls_srtp"
    response = studio.add(name="Invite", method="sip_invite", ring_timeout="3")
    assert "greater than or equal to 5" in field_error(response.get_data(as_text=True), "ring_timeout")
    for typed in ("²", "9" * 5000):  # a digit int() refuses; more digits than int() reads
        response = studio.add(name="Invite", method="sip_invite", ring_timeout=typed)
        assert response.status_code == 422 and field_error(response.get_data(as_text=True), "ring_timeout")
    studio.add(name="Invite", method="sip_invite", ring_timeout="60", encryption="udp_rtp")
    invite = api.get("/v1/destinations/invite").get_json()
    assert invite["ring_timeout"] == 60 and invite["encryption"] == "udp_rtp"


def test_sip_bye_needs_no_route(studio, api):
    studio.add(name="Trunk", method="sip_bye", route="left over from another method")
    assert api.get("/v1/destinations/trunk").get_json()["route"] is None


def test_editing_uses_the_same_form_prefilled(studio, api):
    api.post("/v1/destinations", json={"name": "Billing", "route": "1001", "description": "Old",
                                       "sip_headers": [{"name": "X-A", "value": "1"}]})
    api.post("/v1/destinations", json={"name": "Sales", "route": "1002"})
    html = studio.get("/studio/handoffs/billing/edit").get_data(as_text=True)
    assert 'value="Billing"' in html and ">Old</textarea>" in html and 'value="X-A"' in html
    assert '<option value="sales">Sales</option>' in html and '<option value="billing"' not in html
    response = studio.submit("/studio/handoffs/billing/edit",
                             {"name": "Billing", "description": "New", "method": "sip_refer", "route": "1001",
                              "header_name": ["X-A", "X-B"], "header_value": ["1", "2"], "fallback": "sales"},
                             page="/studio/handoffs/billing/edit")
    assert response.status_code == 303
    saved = api.get("/v1/destinations/billing").get_json()
    assert saved["description"] == "New" and saved["fallback"] == "sales" and len(saved["sip_headers"]) == 2


def test_editing_one_field_is_not_refused_for_an_untouched_one(studio, api):
    api.post("/v1/destinations", json={"name": "Billing", "route": "1001",
                                       "sip_headers": [{"name": "X-A", "value": "1"}]})
    api.put("/v1/integration", json={"provider": "twilio", "sip_headers_supported": False})
    response = studio.submit("/studio/handoffs/billing/edit",
                             {"name": "Billing", "description": "Changed", "method": "sip_refer", "route": "1001",
                              "header_name": ["X-A"], "header_value": ["1"]},
                             page="/studio/handoffs/billing/edit")
    assert response.status_code == 303
    assert api.get("/v1/destinations/billing").get_json()["description"] == "Changed"


def test_a_required_method_locks_the_method_and_hides_a_managed_route(studio, api):
    api.put("/v1/integration", json={"provider": "sip_trunk", "required_method": "sip_invite",
                                     "route_editable": False})
    html = studio.get("/studio/handoffs/new").get_data(as_text=True)
    assert re.search(r'<select id="method" data-method disabled', html)
    assert '<input type="hidden" name="method" value="sip_invite">' in html
    assert 'name="route"' not in html and "Routes are managed by the integration" in html
    response = studio.add(name="Desk", method="sip_refer")  # a tampered form
    assert field_error(response.get_data(as_text=True), "method") == "the integration requires method sip_invite"


def test_an_unknown_destination_is_a_404_page(studio):
    response = studio.get("/studio/handoffs/nope/edit")
    assert response.status_code == 404 and "does not exist" in response.get_data(as_text=True)


# -- card actions ---------------------------------------------------------------------
def test_duplicate_and_set_as_default(studio, api):
    studio.add()
    response = studio.submit("/studio/handoffs/billing/duplicate")
    assert response.status_code == 303 and response.headers["Location"].endswith("#destination-billing-copy")
    assert api.get("/v1/destinations/billing-copy").get_json()["is_default"] is False
    studio.submit("/studio/handoffs/billing-copy/default")
    assert api.get("/v1/destinations/billing-copy").get_json()["is_default"] is True
    assert "Billing (copy) is now the default" in studio.get("/studio/handoffs").get_data(as_text=True)


def test_delete_needs_the_exact_name(studio, api):
    studio.add()
    page = studio.get("/studio/handoffs/billing/delete")
    assert page.status_code == 200 and "Type <strong>Billing</strong> to confirm" in page.get_data(as_text=True)
    refused = studio.submit("/studio/handoffs/billing/delete", {"confirm": "billing"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "Not deleted: to delete this destination" in html
    assert 'value="billing"' in html
    deleted = studio.submit("/studio/handoffs/billing/delete", {"confirm": "Billing"})
    assert deleted.status_code == 303
    assert api.get("/v1/destinations").get_json()["items"] == []


def test_pages_carry_a_strict_content_security_policy(studio):
    response = studio.get("/studio/handoffs")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script>" not in response.get_data(as_text=True)  # no inline script for the CSP to allow


def test_the_sign_in_page_sends_a_signed_in_user_on(studio):
    response = studio.get("/studio/sign-in?next=/studio/handoffs/new")
    assert response.status_code == 302 and response.headers["Location"] == "/studio/handoffs/new"


def test_long_routes_may_wrap_after_the_at_sign(studio, api):
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:billing@pbx.example.com"})
    assert "<code>sip:billing@<wbr>pbx.example.com</code>" in studio.get("/studio/handoffs").get_data(as_text=True)



def test_an_unreachable_store_is_a_page_not_json(app, config):
    from app import create_app

    down = create_app(config.with_overrides(redis_url="redis://127.0.0.1:9", redis_timeout=0.2))
    # Signed in while the store was up (sessions live there), the same cookie once it is not.
    up = app.test_client()
    sign_in(up)
    client = down.test_client()
    client.set_cookie("session", up.get_cookie("session").value)
    response = client.get("/studio/handoffs")
    assert response.status_code == 503 and "Temporarily unavailable" in response.get_data(as_text=True)
    refused = sign_in(down.test_client())
    assert refused.status_code == 503 and "Temporarily unavailable" in refused.get_data(as_text=True)


def test_simultaneous_ring_routes_and_closed_hours_show_on_the_card(studio, api, services):
    from datetime import datetime

    api.post("/v1/destinations", json={
        "name": "Team", "method": "sip_invite", "route": ["sip:ann@pbx.example.com", "+14155550123"],
        "hours": {"timezone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]}}})
    services.clock = lambda: datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # a Sunday night
    html = studio.get("/studio/handoffs").get_data(as_text=True)
    assert "sip:ann@<wbr>pbx.example.com" in html and "+14155550123" in html
    assert "Closed now" in html and 'data-warning="closed"' in html


# -- advanced settings ----------------------------------------------------------------
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE_HOURS = {**{f"hours_{d}_open": "09:00" for d in WEEKDAYS}, **{f"hours_{d}_close": "17:30" for d in WEEKDAYS}}


def advanced_open(html: str) -> bool:
    return re.search(r'<details class="advanced" open', html) is not None


def test_every_advanced_field_is_saved_as_the_api_stores_it(studio, api):
    response = studio.add(name="Support", method="sip_invite", route=["+14155550100", "", "+14155550111"],
                          on_failure="return_to_agent", caller_id="$called_number", extension="ww12#",
                          hours="set", timezone="Europe/London", **OFFICE_HOURS,
                          hours_sat_open=["10:00", "13:00", ""], hours_sat_close=["12:00", "14:00", ""],
                          closed_dates="2026-12-25, 2026-12-26")
    assert response.status_code == 303
    saved = api.get("/v1/destinations/support").get_json()
    assert saved["route"] == ["+14155550100", "+14155550111"]
    assert (saved["on_failure"], saved["caller_id"], saved["extension"]) == ("return_to_agent", "$called_number", "ww12#")
    assert saved["hours"] == {"timezone": "Europe/London",
                              "weekly": {**{d: [["09:00", "17:30"]] for d in WEEKDAYS},
                                         "sat": [["10:00", "12:00"], ["13:00", "14:00"]]},
                              "closed_dates": ["2026-12-25", "2026-12-26"]}
    assert saved["transfer_mode"] == "blind" and saved["detect_voicemail"] is False

    studio.add(name="Desk", method="sip_invite", route="sip:desk@pbx.example.com", transfer_mode="warm_accept",
               detect_voicemail="true")
    studio.add(name="Consult", route="sip:consult@pbx.example.com", transfer_mode="consult",
               hold_audio_url="https://example.com/hold.mp3", intro="public")
    desk, consult = (api.get(f"/v1/destinations/{i}").get_json() for i in ("desk", "consult"))
    assert desk["transfer_mode"] == "warm_accept" and desk["detect_voicemail"] is True
    assert (consult["transfer_mode"], consult["hold_audio_url"], consult["intro"]) == (
        "consult", "https://example.com/hold.mp3", "public")


@pytest.mark.parametrize("fields, field, message", [
    ({"transfer_mode": "warm_message"}, "transfer_mode", "warm_message needs method sip_invite"),
    ({"method": "sip_invite", "route": ["+14155550100", "+14155550111"], "detect_voicemail": "true"},
     "detect_voicemail", "voicemail detection cannot ring several routes at once"),
    ({"method": "sip_invite", "route": ["+14155550100", "+14155550111"], "transfer_mode": "consult"},
     "transfer_mode", "consult cannot ring several routes at once"),
    ({"route": ["sip:a@pbx.example.com", "sip:b@pbx.example.com"]}, "route",
     "a list of routes (simultaneous ring) needs method sip_invite"),
    ({"detect_voicemail": "true"}, "detect_voicemail", "voicemail detection needs method sip_invite"),
    ({"method": "sip_invite", "route": "sip:a@pbx.example.com;transport=udp"}, "encryption",
     "tls_srtp needs ;transport=tls"),
    ({"caller_id": "0207 946 0000"}, "caller_id", "a caller ID is an E.164 number"),
    ({"extension": "1234"}, "extension", "an extension needs a phone-number (E.164) route"),
    ({"route": "+14155550100", "extension": "12 34"}, "extension", "an extension is DTMF digits"),
    ({"transfer_mode": "consult", "hold_audio_url": "http://example.com/hold.mp3"}, "hold_audio_url",
     "hold audio is an https:// URL"),
    ({"transfer_mode": "sideways"}, "transfer_mode", "Must be one of"),
    ({"hours": "set", "timezone": "Mars/Olympus", **OFFICE_HOURS}, "timezone",
     "timezone 'Mars/Olympus' is not an IANA time zone"),
    # a folder of the time-zone database, and a name too long to be a file: OSError, not a 503
    ({"hours": "set", "timezone": "America", **OFFICE_HOURS}, "timezone",
     "timezone 'America' is not an IANA time zone"),
    ({"hours": "set", "timezone": "Zone" * 100, **OFFICE_HOURS}, "timezone",
     "timezone 'ZoneZone"),
    ({"hours": "set", "timezone": "UTC", "hours_tue_open": "17:00", "hours_tue_close": "09:00"}, "hours_tue",
     "17:00–09:00 ends before it starts"),
    ({"hours": "set", "timezone": "UTC", "hours_wed_open": "09:00", "hours_wed_close": ""}, "hours_wed",
     'each window is ["HH:MM", "HH:MM"]'),
    ({"hours": "set", "timezone": "UTC", "closed_dates": "2026-12-25, 25/12/2026"}, "closed_dates",
     "'25/12/2026' is not a date (YYYY-MM-DD)"),
])
def test_a_refused_advanced_field_is_shown_beside_it_with_advanced_open(studio, api, fields, field, message):
    response = studio.add(**fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in field_error(html.replace("&#34;", '"').replace("&#39;", "'"), field)
    assert advanced_open(html) == (field not in ("route", "encryption"))  # those two are basic fields
    assert api.get("/v1/destinations").get_json()["items"] == []


def test_a_refused_form_keeps_every_advanced_value_as_typed(studio):
    response = studio.add(method="sip_invite", route=["+14155550100", "+14155550111"], detect_voicemail="true",
                          on_failure="hangup", caller_id="+14155550199", extension="ww9", hours="set",
                          timezone="America/New_York", hours_mon_open=["08:00", "13:00"],
                          hours_mon_close=["12:00", "18:00"], closed_dates="2026-07-04")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and field_error(html, "detect_voicemail")
    for kept in ('id="route-2" name="route" value="+14155550111"', 'name="detect_voicemail" value="true" checked',
                 '<option value="hangup" selected>', 'value="+14155550199"', 'value="ww9"',
                 'name="hours" value="set" checked', "<option selected>America/New_York</option>",
                 'value="08:00" aria-label="Monday opens"', 'value="18:00" aria-label="Monday closes, range 2"',
                 'value="2026-07-04"'):
        assert kept in html, kept


def test_editing_shows_the_saved_advanced_fields_with_advanced_open(studio, api):
    api.post("/v1/destinations", json={"name": "Plain", "route": "1001"})
    assert not advanced_open(studio.get("/studio/handoffs/plain/edit").get_data(as_text=True))
    api.post("/v1/destinations", json={
        "name": "Team", "method": "sip_invite", "route": ["sip:ann@pbx.example.com", "sip:bob@pbx.example.com"],
        "on_failure": "voicemail", "caller_id": "$called_number",
        "hours": {"timezone": "Asia/Tokyo", "weekly": {"sat": [["10:00", "24:00"]]}, "closed_dates": ["2027-01-01"]}})
    html = studio.get("/studio/handoffs/team/edit").get_data(as_text=True)
    assert advanced_open(html)
    for shown in ('id="route" name="route" value="sip:ann@pbx.example.com"',
                  'id="route-2" name="route" value="sip:bob@pbx.example.com"', '<option value="voicemail" selected>',
                  'value="$called_number"', "<option selected>Asia/Tokyo</option>",
                  'value="24:00" aria-label="Saturday closes"', 'value="2027-01-01"'):
        assert shown in html, shown


def test_saving_the_form_untouched_changes_nothing(studio, api):
    """Saving what the form showed is no change: no version, no rewritten field, even for a
    destination the API wrote in a form the page shows differently (hours without closed
    dates or with an empty day, a name and a header value with spaces around them, a
    description on two lines)."""
    api.post("/v1/destinations", json={
        "name": " Team ", "route": "1001", "description": "  Desk\nfloor 2  ",
        "sip_headers": [{"name": "X-A", "value": " 1 "}],
        "hours": {"timezone": "UTC", "weekly": {"mon": [["09:00", "17:00"]], "tue": []}}})
    before = api.get("/v1/destinations/team").get_json()
    response = studio.submit("/studio/handoffs/team/edit",
                             # a browser sends a textarea's line breaks as CRLF
                             {"name": " Team ", "description": "  Desk\r\nfloor 2  ", "method": "sip_refer",
                              "route": "1001",
                              "header_name": ["X-A", ""], "header_value": [" 1 ", ""], "fallback": "",
                              "transfer_mode": "blind", "on_failure": "next", "intro": "private", "hours": "set",
                              "timezone": "UTC", "hours_mon_open": "09:00", "hours_mon_close": "17:00"},
                             page="/studio/handoffs/team/edit")
    assert response.status_code == 303
    assert api.get("/v1/destinations/team").get_json() == before
    history = studio.get("/studio/handoffs/versions").get_data(as_text=True)
    assert "Added destination  Team " in history and "Changed" not in history


def test_fields_left_out_of_the_form_are_saved_as_unset(studio, api):
    """The script disables fields that do not apply, so the browser does not send them."""
    api.post("/v1/destinations", json={
        "name": "Team", "method": "sip_invite", "route": ["+14155550100", "+14155550111"], "on_failure": "hangup",
        "caller_id": "+14155550199", "hours": {"timezone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]}}})
    response = studio.submit("/studio/handoffs/team/edit",
                             {"name": "Team", "method": "sip_refer", "route": "+14155550100",
                              "transfer_mode": "blind", "on_failure": "hangup", "hours": "always",
                              "timezone": "UTC", "hours_mon_open": "09:00", "hours_mon_close": "17:00"},
                             page="/studio/handoffs/team/edit")
    assert response.status_code == 303
    saved = api.get("/v1/destinations/team").get_json()
    assert saved["method"] == "sip_refer" and saved["route"] == "+14155550100"
    assert saved["caller_id"] is None and saved["hours"] is None and saved["on_failure"] == "hangup"


def test_the_time_zone_select_offers_iana_zones(studio):
    html = studio.get("/studio/handoffs/new").get_data(as_text=True)
    assert '<optgroup label="Europe">' in html and "<option>Europe/London</option>" in html
    assert "<option selected>UTC</option>" in html and "<option>localtime</option>" not in html


def test_cards_show_advanced_settings_one_line_each(studio, api, services):
    from datetime import datetime

    api.post("/v1/destinations", json={
        "name": "Desk", "method": "sip_invite", "route": "+14155550100", "transfer_mode": "warm_accept",
        "detect_voicemail": True, "extension": "ww12#", "on_failure": "return_to_agent",
        "hours": {"timezone": "Europe/London", "weekly": {**{d: [["09:00", "17:30"]] for d in WEEKDAYS},
                                                          "sat": [["10:00", "14:00"]]},
                  "closed_dates": ["2026-12-25"]}})
    api.post("/v1/destinations", json={"name": "Consult", "route": "sip:c@pbx.example.com",
                                       "transfer_mode": "consult", "intro": "public", "caller_id": "$called_number",
                                       "hold_audio_url": "https://example.com/hold.mp3"})
    api.post("/v1/destinations", json={"name": "Plain", "route": "sip:p@pbx.example.com"})
    services.clock = lambda: datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # a Monday evening
    html = studio.get("/studio/handoffs").get_data(as_text=True)
    desk = html[html.index('id="destination-desk"'):html.index('id="destination-consult"')]
    consult = html[html.index('id="destination-consult"'):html.index('id="destination-plain"')]
    plain = html[html.index('id="destination-plain"'):]
    for line in ("Warm transfer with accept", "Detects voicemail", "Dials extension ww12#",
                 "On failure: back to the agent",
                 "Open Mon–Fri 09:00–17:30; Sat 10:00–14:00 Europe/London, closed now", "Closed on 2026-12-25"):
        assert f"<li>{line}</li>" in desk, line
    assert 'data-warning="caller_id_missing"' in desk and "No caller ID" in desk
    edit = studio.get("/studio/handoffs/desk/edit").get_data(as_text=True)
    assert 'data-warning="caller_id_missing">No caller ID: no caller_id and no DEFAULT_CALLER_ID' in edit
    assert 'data-warning="caller_id_missing"' not in studio.get("/studio/handoffs/consult/edit").get_data(as_text=True)
    for line in ("Consult transfer, public intro", "Hold audio https://example.com/hold.mp3",
                 "Caller ID $called_number"):
        assert f"<li>{line}</li>" in consult, line
    assert "data-settings" not in plain

    services.clock = lambda: datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert "Europe/London, open now" in studio.get("/studio/handoffs").get_data(as_text=True)
