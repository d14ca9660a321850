"""Views of the floor scenario: the cheapest useful request, one INSERT through Django.

`insert_row` goes through the project's whole middleware stack and writes one row to
bench_floor (created by the scenario's setup), so its throughput is the ceiling no view of
this project can beat on the same machine. `ready` tells the harness which database a server
is connected to, so it can refuse to load a server that is not on the run's database.
"""

import json

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, "
    "created_at timestamptz NOT NULL DEFAULT now(), payload jsonb)"
)


@csrf_exempt
@require_POST
def insert_row(request):
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor (payload) VALUES (%s::jsonb) RETURNING id",
            [json.dumps(payload)],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id}, status=201)


@require_GET
def ready(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    return JsonResponse({"database": database})
