import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/logs", "get"),
    ("/api/v1/logs/export", "get"),
    ("/api/v1/logs/{tracking_id}", "get"),
    ("/api/v1/users/{user_id}/logs", "get"),
    ("/{client_id}/logs/query", "post"),
    ("/api/v1/environment", "get"),
    ("/api/v1/users/{user_id}/data", "delete"),
    ("/api/v1/erasures/{job_id}", "get"),
}


def test_schema_is_public_and_every_logs_operation_has_examples():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    for path, method in OPERATIONS:
        operation = schema["paths"][path][method]
        assert operation["summary"], path
        examples = [
            example
            for status in operation["responses"].values()
            for media in status.get("content", {}).values()
            for example in media.get("examples", {})
        ]
        examples += list(
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("examples", {})
        )
        assert examples, f"{method.upper()} {path} has no example"
        assert "401" in operation["responses"], path
        if path.startswith(("/api/v1/logs", "/api/v1/users", "/{client_id}/logs")):
            assert {"400", "429"} <= set(operation["responses"]), path
        assert operation["security"] == [{"basicAuth": []}, {"bearerAuth": []}]


def test_docs_page_lists_every_operation_with_no_external_asset():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    for path, _ in OPERATIONS:
        assert f"<code>{path}</code>" in html
    assert "requestFilter" in html and "Krabby Patty" in html
    assert "<script" not in html
    assert "https://cdn" not in html and "//unpkg" not in html
