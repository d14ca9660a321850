"""GET /api/docs/: the API reference as one self-contained HTML page, rendered on the server
from the same OpenAPI schema /api/schema/ serves.

Why not Swagger UI or Redoc: drf-spectacular's views for them load their JavaScript from a
CDN (its "sidecar" package, which bundles the assets, is not a dependency here), and a
self-hosted console must not need the internet to show its own documentation, nor a
Content-Security-Policy hole for a CDN. This page has no script at all: every endpoint, its
parameters, body, responses and examples, linked from a table of contents. Tools that want the
machine-readable form read /api/schema/ (YAML, or ?format=json).

Descriptions in the schema are CommonMark, as Swagger UI and Redoc render them; this page
renders them the same way (markdown-it-py, the CommonMark reference's Python port), with raw
HTML off: a description can format text, never inject markup. Request bodies are listed field
by field, nested objects as dotted paths (`user.email`, `options.email.ccAddresses`).
"""

import functools
import json
from pathlib import Path

from django.http import HttpResponse
from django.template import Context, Engine
from django.utils.safestring import SafeString, mark_safe
from drf_spectacular.generators import SchemaGenerator
from markdown_it import MarkdownIt

_PAGE = Engine(dirs=[Path(__file__).parent / "templates"]).get_template("api_docs.html")
# html=False: raw HTML in a description is shown as text, never as markup.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
# How deep nested request fields are listed (user.pushTokens[].device is deep enough).
_MAX_FIELD_DEPTH = 4


def _markdown(text: str) -> SafeString:
    """A description as HTML (block: paragraphs, lists, code blocks)."""
    return mark_safe(_MARKDOWN.render(text or ""))  # noqa: S308 - markdown-it escapes HTML


def _markdown_inline(text: str) -> SafeString:
    """A short description as inline HTML (code, emphasis, links; no paragraph)."""
    return mark_safe(_MARKDOWN.renderInline(text or ""))  # noqa: S308 - as above


def _type(schema: dict) -> str:
    if len(schema.get("allOf", ())) == 1:  # a $ref with a description of its own
        return _type(schema["allOf"][0])
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


def _resolved(schema: dict, components: dict) -> dict:
    if len(schema.get("allOf", ())) == 1:
        schema = schema["allOf"][0]
    if "$ref" in schema:
        return components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _fields(schema: dict, components: dict, prefix: str = "", depth: int = 0) -> list[dict]:
    """One row per field of an object schema, then its nested objects' fields (dotted, `[]`
    for the items of an array), so a body reads as a reference: name, type, required, what."""
    schema = _resolved(schema, components)
    if schema.get("type") == "array":
        return _fields(schema.get("items", {}), components, f"{prefix}[]", depth)
    rows = []
    required = set(schema.get("required", []))
    for name, spec in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        rows.append(
            {
                "name": path,
                "type": _type(spec),
                "required": name in required,
                "description": _markdown(spec.get("description", "")),
            }
        )
        inner = _resolved(spec, components)
        if inner.get("type") == "array":
            inner = _resolved(inner.get("items", {}), components)
            path += "[]"
        if inner.get("properties") and depth < _MAX_FIELD_DEPTH:
            rows += _fields(inner, components, path, depth + 1)
    return rows


def _body(content: dict, components: dict) -> dict | None:
    schema = next(iter(content.values()), {}).get("schema")
    if not schema:
        return None
    return {"type": _type(schema), "fields": _fields(schema, components)}


def _operation(path: str, method: str, operation: dict, components: dict) -> dict:
    body = operation.get("requestBody", {}).get("content", {})
    return {
        "id": operation.get("operationId", f"{method}{path}"),
        "method": method,
        "path": path,
        "summary": operation.get("summary", ""),
        "description": _markdown(operation.get("description", "")),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "type": _type(p.get("schema", {})),
                "description": _markdown(p.get("description", "")),
            }
            for p in operation.get("parameters", [])
        ],
        "body": _body(body, components),
        "request_examples": _examples(body),
        "responses": [
            {
                "code": code,
                "description": _markdown_inline(response.get("description", "")),
                "body": _body(response.get("content", {}), components) if code < "300" else None,
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
                "description": _markdown(info.get("description", "")),
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
