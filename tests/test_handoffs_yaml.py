"""PolyAI ADK's config/handoffs.yaml moves over unchanged: import, export, the same file back."""
import pytest
import yaml

HANDOFFS_YAML = '''handoffs:
  - name: escalation_handoff
    description: Transfer to a live agent for complex issues
    is_default: true
    sip_config:
      method: refer
      phone_number: "+15551234567"
    sip_headers:
      - key: X-Reason
        value: escalation
      - key: X-Customer
        value: $customer_id
  - name: billing_desk
    description: Bridged call to the billing desk, encrypted
    is_default: false
    sip_config:
      method: invite
      phone_number: "+15557654321"
      outbound_endpoint: pbx.example.com
      outbound_encryption: TLS/SRTP
    sip_headers: []
  - name: legacy_pbx
    description: Old PBX without TLS
    is_default: false
    sip_config:
      method: invite
      phone_number: "1001"
      outbound_endpoint: legacy.example.com
      outbound_encryption: UDP/RTP
    sip_headers:
      - key: X-Source
        value: polyai
  - name: end_call
    description: End the call gracefully
    is_default: false
    sip_config:
      method: bye
    sip_headers: []
'''
YAML_TYPE = {"Content-Type": "application/yaml"}


def test_adk_handoffs_yaml_round_trips(api):
    dry = api.post("/v1/destinations/import?dry_run=true", data=HANDOFFS_YAML, headers=YAML_TYPE)
    assert dry.status_code == 200 and dry.get_json()["dry_run"] is True
    assert [(c["name"], c["action"]) for c in dry.get_json()["changes"]] == [
        ("escalation_handoff", "create"), ("billing_desk", "create"), ("legacy_pbx", "create"), ("end_call", "create")]
    assert api.get("/v1/destinations").get_json()["items"] == []  # a dry run writes nothing

    done = api.post("/v1/destinations/import", data=HANDOFFS_YAML, headers=YAML_TYPE)
    assert done.status_code == 200 and done.get_json()["dry_run"] is False
    items = {d["name"]: d for d in api.get("/v1/destinations").get_json()["items"]}
    assert items["escalation_handoff"]["is_default"] and items["escalation_handoff"]["method"] == "sip_refer"
    assert items["escalation_handoff"]["sip_headers"] == [{"name": "X-Reason", "value": "escalation"},
                                                          {"name": "X-Customer", "value": "$customer_id"}]
    assert items["billing_desk"]["method"] == "sip_invite" and items["billing_desk"]["encryption"] == "tls_srtp"
    assert items["billing_desk"]["route"] == "sip:+15557654321@pbx.example.com;transport=tls"
    assert items["legacy_pbx"]["encryption"] == "udp_rtp" and items["end_call"]["method"] == "sip_bye"

    exported = api.get("/v1/destinations/export")
    assert exported.status_code == 200 and exported.mimetype == "application/yaml"
    assert exported.get_data(as_text=True) == HANDOFFS_YAML

    again = api.post("/v1/destinations/import?dry_run=true", data=HANDOFFS_YAML, headers=YAML_TYPE).get_json()
    assert {c["action"] for c in again["changes"]} == {"unchanged"}


def test_import_updates_by_name_and_keeps_what_the_file_does_not_describe(api):
    api.post("/v1/destinations", json={"name": "Reception", "route": "sip:reception@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "escalation_handoff", "route": "sip:old@pbx.example.com",
                                        "description": "old", "ring_timeout": 45})
    dry = api.post("/v1/destinations/import?dry_run=true", data=HANDOFFS_YAML, headers=YAML_TYPE).get_json()
    first = dry["changes"][0]
    assert first["action"] == "update" and first["make_default"] is True
    assert first["fields"]["route"] == {"from": "sip:old@pbx.example.com", "to": "+15551234567"}
    api.post("/v1/destinations/import", data=HANDOFFS_YAML, headers=YAML_TYPE)
    items = {d["name"]: d for d in api.get("/v1/destinations").get_json()["items"]}
    assert items["escalation_handoff"]["id"] == "escalation-handoff" and items["escalation_handoff"]["ring_timeout"] == 45
    assert items["escalation_handoff"]["is_default"] and not items["Reception"]["is_default"]
    assert "Reception" in items  # never deleted


def test_an_invalid_entry_writes_nothing_and_is_named(api):
    bad_header = HANDOFFS_YAML.replace("key: X-Source", "key: Source")
    refused = api.post("/v1/destinations/import", data=bad_header, headers=YAML_TYPE)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "validation_error" and "handoffs[2] (legacy_pbx)" in error["message"]
    assert list(error["fields"]) == ["handoffs[2] (legacy_pbx)"]
    assert api.get("/v1/destinations").get_json()["items"] == []  # not even the valid ones before it

    no_number = HANDOFFS_YAML.replace('      phone_number: "+15557654321"\n', "")
    refused = api.post("/v1/destinations/import", data=no_number, headers=YAML_TYPE).get_json()["error"]
    assert "handoffs[1] (billing_desk)" in refused["message"] and "phone_number" in refused["message"]
    deep = "handoffs: " + "[" * 5000 + "]" * 5000  # PyYAML composes recursively: RecursionError
    for text in ("handoffs: [", "just text", deep,
                 yaml.safe_dump({"handoffs": [{"name": "x", "sip_config": {"method": "x"}}]})):
        assert api.post("/v1/destinations/import", data=text, headers=YAML_TYPE).status_code == 422
    assert api.get("/v1/destinations").get_json()["items"] == []
    assert api.client.post("/v1/destinations/import", data=HANDOFFS_YAML).status_code == 401


def _alias_bomb(levels: int) -> str:
    """A few hundred bytes whose aliases stand for 9**levels strings once written out."""
    lines = ['a0: &a0 ["xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", '
             '"xxxxxxxx", "xxxxxxxx", "xxxxxxxx"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nhandoffs:\n  - name: X\n    description: *a{levels - 1}\n" \
                              "    sip_config: {method: bye}\n"


@pytest.mark.parametrize("text, why", [
    ("handoffs:\n  - name: X\n    sip_config: {method: [refer]}\n", "sip_config.method must be one of"),
    ("handoffs:\n  - name: X\n    sip_config: {method: invite, phone_number: '+15557654321', "
     "outbound_encryption: {TLS: SRTP}}\n", "outbound_encryption must be"),
    ("handoffs:\n  - name: X\n    sip_config: {method: refer, phone_number: '1001'}\n"
     "    sip_headers: [{key: X-Tier, value: {gold: true}}]\n", "sip_headers[0].value is text"),
    (_alias_bomb(7), "description is text"),
], ids=["method-list", "encryption-mapping", "header-value-mapping", "alias-bomb"])
def test_an_entry_field_that_is_not_text_is_named_and_refused(api, text, why):
    # Before: a TypeError (500), a mapping stored as its Python repr, or a body of a few
    # hundred bytes expanded into tens of megabytes of text.
    refused = api.post("/v1/destinations/import", data=text, headers=YAML_TYPE)
    assert refused.status_code == 422
    assert list(refused.get_json()["error"]["fields"]) == ["handoffs[0] (X)"]
    assert why in refused.get_json()["error"]["message"]
    assert api.get("/v1/destinations").get_json()["items"] == []
