"""Schemathesis against the live server: generated requests for every operation of
/api/schema/ (valid and invalid), each answered without a 5xx and, for the logs API, as the
schema says."""

import base64

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import CHECKS
from schemathesis.generation.modes import GenerationMode

from tests.logs.api.conftest import SECRET, make_log

# Per logs operation: 30 valid and 20 invalid requests; half as many for the others (in all
# about 500 requests, a minute).
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}
# Checks that judge business rules the schema cannot state (a cursor must come from a
# previous page, a date range has a maximum, a tracking id must exist), not conformance.
LOGS_OPERATIONS = {
    "GET /api/v1/logs",
    "GET /api/v1/logs/export",
    "GET /api/v1/logs/{tracking_id}",
    "GET /api/v1/users/{user_id}/logs",
    "POST /{client_id}/logs/query",
    "GET /api/v1/environment",
}
SKIPPED_CHECKS = {"positive_data_acceptance", "use_after_free", "ensure_resource_availability"}


@pytest.mark.django_db(transaction=True)
def test_generated_requests_get_no_5xx_and_conform_to_the_schema(live_server, environment):
    for n in range(3):
        make_log(environment, minutes=n, merge_tags={"n": n}, outcomes={"email": ("sent", "")})
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    auth = base64.b64encode(f"{environment.client_id}:{SECRET}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    every_check = CHECKS.get_all()
    excluded = [check for check in every_check if check.__name__ in SKIPPED_CHECKS]
    # The other endpoints (the send API, credentials) are fuzzed for 5xx only: their schema
    # conformance is their authors' to assert.
    only_no_5xx = [check for check in every_check if check.__name__ != "not_a_server_error"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= LOGS_OPERATIONS
    for operation in operations:
        ours = operation.label in LOGS_OPERATIONS
        checks_off = excluded if ours else only_no_5xx
        for mode, examples in EXAMPLES.items():
            examples = examples if ours else examples // 2
            _fuzz(operation, mode, examples, live_server.url, headers, checks_off, environment)


def _fuzz(operation, mode, examples, base_url, headers, excluded, environment):
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        if "client_id" in (case.path_parameters or {}):
            # Another client id is refused before the body is read: fuzz the body.
            case.path_parameters["client_id"] = environment.client_id
        case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded)

    check()
