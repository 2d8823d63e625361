"""/v1/destinations and /v1/integration as an ops engineer uses them."""
import pytest

from tests.helpers import add_destination as make


def test_every_v1_route_needs_a_key(app):
    client = app.test_client()
    for path in ("/v1/destinations", "/v1/handoffs", "/v1/conversations"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/destinations", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/destinations", headers={"X-API-Key": "second-key"}).status_code == 200


def test_no_keys_configured_means_every_call_is_refused(app, config):
    from app import create_app

    bare = create_app(config.with_overrides(api_keys=()))
    assert bare.test_client().get("/v1/destinations", headers={"X-API-Key": ""}).status_code == 401


def test_first_destination_becomes_default_and_gets_a_slug_id(api):
    first = make(api, name="Billing Team")
    assert first["id"] == "billing-team" and first["is_default"] is True
    assert first["method"] == "sip_refer" and first["encryption"] == "tls_srtp" and first["ring_timeout"] == 30
    second = make(api, name="Sales")
    assert second["is_default"] is False
    assert [d["id"] for d in api.get("/v1/destinations").get_json()["items"]] == ["billing-team", "sales"]


def test_a_destination_named_export_is_still_readable_by_its_id(api):
    # GET /v1/destinations/export is the ADK export: a destination given the id `export`
    # could never be read at /v1/destinations/<id>.
    created = make(api, name="Export")
    assert created["id"] == "export-2"
    read = api.get("/v1/destinations/export-2")
    assert read.status_code == 200 and read.get_json()["name"] == "Export"
    assert api.get("/v1/destinations/export").mimetype == "application/yaml"


def test_names_are_unique_case_insensitively(api):
    make(api)
    response = api.post("/v1/destinations", json={"name": "BILLING", "route": "1001"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("path, body", [
    ("/v1/destinations", {"name": "BILLING", "route": "1001"}),
    ("/v1/topics", {"name": "BILLING", "phrases": ["invoice"], "action": {}}),
])
def test_a_name_conflict_is_a_conflict_without_validation_fields(api, path, body):
    # `fields` marks a validation error (422); a client reading it must not take a 409 for one.
    make(api)
    api.post("/v1/topics", json={"name": "Billing", "phrases": ["bill"], "action": {}})
    response = api.post(path, json=body)
    error = response.get_json()["error"]
    assert response.status_code == 409 and error["code"] == "conflict" and "fields" not in error


def test_validation_errors_name_the_field(api):
    response = api.post("/v1/destinations", json={"name": "X", "method": "carrier_pigeon",
                                                  "ring_timeout": 3, "route": "sip:a@b"})
    error = response.get_json()["error"]
    assert response.status_code == 422 and error["code"] == "validation_error"
    assert set(error["fields"]) == {"method", "ring_timeout"}


@pytest.mark.parametrize("headers, field_text", [
    ([{"name": "Customer", "value": "1"}], "X-Name"),
    ([{"name": "X-Twilio-Case", "value": "1"}], "X-Twilio"),
    ([{"name": "X-Case", "value": "a\r\nVia: evil"}], "CR, LF"),
])
def test_header_rules(api, headers, field_text):
    response = api.post("/v1/destinations", json={"name": "H", "route": "sip:a@b", "sip_headers": headers})
    assert response.status_code == 422
    assert field_text in str(response.get_json()["error"]["fields"]["sip_headers"])


def test_static_headers_over_twilios_limit_are_refused(api):
    headers = [{"name": f"X-H{i}", "value": "v" * 300} for i in range(4)]
    response = api.post("/v1/destinations", json={"name": "Big", "route": "sip:a@b", "sip_headers": headers})
    assert response.status_code == 422
    assert "1024" in response.get_json()["error"]["fields"]["sip_headers"][0]


def test_route_rules(api):
    assert api.post("/v1/destinations", json={"name": "A"}).get_json()["error"]["fields"] == {
        "route": ["a route is required for method sip_refer"]}
    bad = api.post("/v1/destinations", json={"name": "B", "route": "sip:a@b?X-Evil=1"})
    assert "route" in bad.get_json()["error"]["fields"]
    bye = api.post("/v1/destinations", json={"name": "SBC", "method": "sip_bye"})
    assert bye.status_code == 201 and bye.get_json()["route"] is None


def test_malformed_json_wrong_type_and_oversize(api, app):
    client = app.test_client()
    headers = {"X-API-Key": "test-api-key"}
    bad = client.post("/v1/destinations", data="{nope", headers={**headers, "Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"] == {"body": ["not valid JSON"]}
    form = client.post("/v1/destinations", data={"name": "x"}, headers=headers)
    assert form.status_code == 415 and form.get_json()["error"]["code"] == "unsupported_media_type"
    huge = client.post("/v1/destinations", data="x" * (1024 * 1024 + 10),
                       headers={**headers, "Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "payload_too_large"


def test_patch_is_partial(api):
    dest = make(api, description="old")
    response = api.patch(f"/v1/destinations/{dest['id']}", json={"ring_timeout": 60})
    body = response.get_json()
    assert response.status_code == 200 and body["ring_timeout"] == 60 and body["description"] == "old"
    assert body["id"] == dest["id"]
    assert api.patch("/v1/destinations/nope", json={}).status_code == 404


def test_duplicate_names_copies_and_is_never_default(api):
    dest = make(api)
    copies = [api.post(f"/v1/destinations/{dest['id']}/duplicate").get_json() for _ in range(3)]
    assert [c["name"] for c in copies] == ["Billing (copy)", "Billing (copy 2)", "Billing (copy 3)"]
    assert all(not c["is_default"] for c in copies)
    assert copies[0]["route"] == dest["route"] and copies[0]["id"] != dest["id"]


def test_a_copy_of_a_name_at_the_length_limit_is_still_a_valid_name(api):
    dest = make(api, name="N" * 100)  # the longest name a destination may have
    copies = [api.post(f"/v1/destinations/{dest['id']}/duplicate") for _ in range(2)]
    names = [copy.get_json()["name"] for copy in copies]
    assert [copy.status_code for copy in copies] == [201, 201]
    assert names[0].endswith(" (copy)") and names[1].endswith(" (copy 2)")
    assert all(len(name) == 100 and name.startswith("NNN") for name in names)
    # what was read back can be sent back
    again = api.patch(f"/v1/destinations/{copies[0].get_json()['id']}", json={"name": names[0]})
    assert again.status_code == 200


def test_exactly_one_default(api):
    make(api, name="A")
    b = make(api, name="B")
    api.post(f"/v1/destinations/{b['id']}/default")
    items = api.get("/v1/destinations").get_json()["items"]
    assert [d["is_default"] for d in items] == [False, True]


def test_delete_needs_the_exact_name_and_leaves_no_default_warning(api):
    a, b = make(api, name="Alpha"), make(api, name="Beta")
    refused = api.delete(f"/v1/destinations/{a['id']}?confirm=alpha")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "confirmation_required"
    assert api.delete(f"/v1/destinations/{a['id']}").status_code == 409
    assert api.delete(f"/v1/destinations/{a['id']}?confirm=Alpha").status_code == 204
    assert api.get(f"/v1/destinations/{a['id']}").status_code == 404
    remaining = api.get("/v1/destinations").get_json()["items"]
    assert [w["code"] for w in remaining[0]["warnings"]] == ["no_default"]
    api.post(f"/v1/destinations/{b['id']}/default")
    assert api.get(f"/v1/destinations/{b['id']}").get_json()["warnings"] == []


def test_fallback_must_name_another_existing_destination(api):
    a = make(api, name="A")
    assert api.patch(f"/v1/destinations/{a['id']}", json={"fallback": a["id"]}).status_code == 422
    assert api.patch(f"/v1/destinations/{a['id']}", json={"fallback": "ghost"}).status_code == 422
    b = make(api, name="B", fallback=a["id"])
    assert b["fallback"] == a["id"]


def test_deleting_a_fallback_leaves_the_destinations_pointing_at_it_editable(api):
    make(api, name="A")
    make(api, name="B", fallback="a")
    assert api.delete("/v1/destinations/a?confirm=A").status_code == 204
    edited = api.patch("/v1/destinations/b", json={"description": "after A went"})
    assert edited.status_code == 200 and edited.get_json()["description"] == "after A went"
    assert api.patch("/v1/destinations/b", json={"fallback": None}).get_json()["fallback"] is None


@pytest.mark.parametrize("fields, named", [
    ({"method": "sip_invite", "route": "+14155550100", "caller_id": "+14155550111\n"}, "caller_id"),
    ({"method": "sip_invite", "route": "+14155550100", "extension": "1234\n"}, "extension"),
    ({"method": "twilio_flex", "route": "WW" + "a" * 32 + "\n"}, "route"),
    ({"method": "sip_invite", "route": "+14155550100", "transfer_mode": "consult",
      "hold_audio_url": "https://hold.example.com/music.mp3\n"}, "hold_audio_url"),
])
def test_a_trailing_newline_is_not_part_of_a_valid_value(api, fields, named):
    # A regex's `$` matches before a final newline: these values reach TwiML attributes.
    response = api.post("/v1/destinations", json={"name": "Trailing", **fields})
    assert response.status_code == 422 and named in response.get_json()["error"]["fields"]


def test_integration_constraints_refuse_writes_and_warn_existing(api):
    dest = make(api, sip_headers=[{"name": "X-A", "value": "1"}])
    put = api.put("/v1/integration", json={"provider": "sip_trunk", "required_method": "sip_invite",
                                            "route_editable": True, "sip_headers_supported": False})
    assert put.status_code == 200 and put.get_json()["required_method"] == "sip_invite"
    codes = [w["code"] for w in api.get(f"/v1/destinations/{dest['id']}").get_json()["warnings"]]
    assert codes == ["method_mismatch", "sip_headers_unsupported"]
    refused = api.post("/v1/destinations", json={"name": "New", "route": "sip:a@b"})
    assert refused.status_code == 422 and "method" in refused.get_json()["error"]["fields"]
    ok = api.post("/v1/destinations", json={"name": "New", "route": "sip:a@b", "method": "sip_invite"})
    assert ok.status_code == 201
    api.put("/v1/integration", json={"provider": "twilio", "route_editable": False})
    codes = [w["code"] for w in api.get(f"/v1/destinations/{dest['id']}").get_json()["warnings"]]
    assert codes == ["route_not_editable"]
    assert api.post("/v1/destinations", json={"name": "C", "route": "sip:x@y"}).status_code == 422
