"""GET /api/docs/: the API reference as one self-contained HTML page, rendered on the server
from the same OpenAPI schema /api/schema/ serves.

Why not Swagger UI or Redoc: drf-spectacular's views for them load their JavaScript from a
CDN (its "sidecar" package, which bundles the assets, is not a dependency here), and a
self-hosted console must not need the internet to show its own documentation, nor a
Content-Security-Policy hole for a CDN. This page has no script at all: every endpoint, its
parameters, body, responses and examples, linked from a table of contents. Tools that want the
machine-readable form read /api/schema/ (YAML, or ?format=json).
"""

import functools
import json
from pathlib import Path

from django.http import HttpResponse
from django.template import Context, Engine
from drf_spectacular.generators import SchemaGenerator

_PAGE = Engine(dirs=[Path(__file__).parent / "templates"]).get_template("api_docs.html")


def _type(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v not in ("", None)) or "string"
    return schema.get("format") or schema.get("type") or "object"


def _examples(content: dict) -> list[dict]:
    found = []
    for media in content.values():
        for name, example in (media.get("examples") or {}).items():
            value = example.get("value")
            text = value if isinstance(value, str) else json.dumps(value, indent=2)
            found.append({"name": example.get("summary") or name, "value": text})
    return found


def _operation(path: str, method: str, operation: dict, components: dict) -> dict:
    body = operation.get("requestBody", {}).get("content", {})
    body_schema = next(iter(body.values()), {}).get("schema")
    body_text = ""
    if body_schema:
        name = _type(body_schema)
        schema = components.get(name, body_schema)
        body_text = f"{name}\n" + "\n".join(
            f"  {field}: {_type(spec)}  {spec.get('description', '')}"
            for field, spec in schema.get("properties", {}).items()
        )
    return {
        "id": operation.get("operationId", f"{method}{path}"),
        "method": method,
        "path": path,
        "summary": operation.get("summary", ""),
        "description": operation.get("description", ""),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "type": _type(p.get("schema", {})),
                "description": p.get("description", ""),
            }
            for p in operation.get("parameters", [])
        ],
        "body": body_text,
        "request_examples": _examples(body),
        "responses": [
            {
                "code": code,
                "description": response.get("description", ""),
                "examples": _examples(response.get("content", {})),
            }
            for code, response in operation.get("responses", {}).items()
        ],
    }


@functools.cache
def _page_html() -> str:
    # The schema only changes with the code: render it once per process.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    operations = [
        _operation(path, method, operation, components)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    info = schema["info"]
    return _PAGE.render(
        Context(
            {
                "title": info.get("title", "API"),
                "version": info.get("version", ""),
                "description": info.get("description", ""),
                "schema_url": "/api/schema/",
                "operations": operations,
            }
        )
    )


def api_docs(request) -> HttpResponse:
    """GET /api/docs/: public, like the schema; it documents, it reveals no data."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(_page_html())
