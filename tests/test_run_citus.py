"""`DATABASE_URL=$(scripts/citus-cluster start) make run`: scripts/run.py sees that the database
is a Citus coordinator and runs every process with DATABASE_CITUS=true (without it the live
sends fail on the cluster: "could not create distributed plan"); on plain PostgreSQL it leaves
the setting alone. Runs in both CI passes: the answer must match the database."""

import importlib.util
from pathlib import Path

import pytest
from django.db import connection

from logs.citus import is_citus

ROOT = Path(__file__).resolve().parent.parent


def _run_module():
    spec = importlib.util.spec_from_file_location("run_script", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_make_run_detects_a_citus_coordinator_from_database_url():
    db = connection.settings_dict
    url = (
        f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    assert _run_module()._citus_coordinator(url) is is_citus()


def test_make_run_leaves_database_citus_alone_when_the_database_cannot_be_reached():
    # migrate, which runs next, says what is wrong with the database.
    assert _run_module()._citus_coordinator("postgresql://nobody@127.0.0.1:1/none") is False
