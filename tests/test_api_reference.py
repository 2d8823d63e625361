"""docs/api.md, the repository's API reference, is what the code's OpenAPI document says."""
from web import api_reference
from web.openapi import build_spec


def test_docs_api_md_is_regenerated_from_the_openapi_document():
    written = api_reference.DOC_PATH.read_text()
    assert written == api_reference.current_document(), (
        "docs/api.md is stale: run ./scripts/api_docs and commit the result")


def test_the_reference_names_every_operation_of_the_document(app):
    spec = build_spec(app)
    text = api_reference.render(spec)
    for path, item in spec["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in text
    for name in spec["components"]["schemas"]:
        assert f'<a id="schema-{name.lower()}"></a>' in text


def test_table_cells_survive_pipes_and_newlines():
    assert api_reference._cell("a|b\n c") == "a\\|b c"
