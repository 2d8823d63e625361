"""marshmallow schemas for every /v1 body: validation, and the source of the OpenAPI document."""
