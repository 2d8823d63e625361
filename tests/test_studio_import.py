"""handoffs.yaml on the Call handoffs page: check what would change, then import; export."""
from io import BytesIO

from tests.test_handoffs_yaml import HANDOFFS_YAML
from tests.test_studio import Studio, csrf


def test_import_page_shows_changes_first_then_imports_and_exports(app, api):
    studio = Studio(app.test_client())
    assert 'href="/studio/handoffs/import"' in studio.get("/studio/handoffs").get_data(as_text=True)
    page = studio.get("/studio/handoffs/import")
    assert page.status_code == 200 and "Export handoffs.yaml" in page.get_data(as_text=True)

    token = csrf(page)
    checked = studio.client.post("/studio/handoffs/import", data={
        "csrf_token": token, "action": "check", "file": (BytesIO(HANDOFFS_YAML.encode()), "handoffs.yaml")},
        content_type="multipart/form-data")
    html = checked.get_data(as_text=True)
    assert checked.status_code == 200 and 'data-change="billing_desk"' in html and "Added" in html
    assert "Import 4 handoffs" in html
    assert api.get("/v1/destinations").get_json()["items"] == []  # checking writes nothing

    applied = studio.client.post("/studio/handoffs/import", data={
        "csrf_token": token, "action": "apply", "yaml": HANDOFFS_YAML})
    assert applied.status_code == 303
    assert len(api.get("/v1/destinations").get_json()["items"]) == 4
    exported = studio.get("/studio/handoffs/export")
    assert exported.get_data(as_text=True) == HANDOFFS_YAML

    refused = studio.client.post("/studio/handoffs/import", data={
        "csrf_token": token, "action": "apply", "yaml": HANDOFFS_YAML.replace("method: bye", "method: hold")})
    assert refused.status_code == 422 and "handoffs[3]" in refused.get_data(as_text=True)
    assert studio.client.post("/studio/handoffs/import", data={"yaml": HANDOFFS_YAML}).status_code == 400


def test_a_file_over_the_size_limit_is_refused_with_a_page(app):
    studio = Studio(app.test_client())
    token = csrf(studio.get("/studio/handoffs/import"))
    refused = studio.client.post("/studio/handoffs/import", data={
        "csrf_token": token, "action": "check", "file": (BytesIO(b"# padding\n" * 200_000), "handoffs.yaml")},
        content_type="multipart/form-data")
    assert refused.status_code == 413 and refused.mimetype == "text/html"
    assert "over 1 MiB" in refused.get_data(as_text=True)
