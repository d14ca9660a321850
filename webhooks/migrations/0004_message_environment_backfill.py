"""On Citus, the message id lookup of callbacks that name no environment
(webhooks/message_environments.py) gets the rows of deliveries sent before it existed: a log
distributed with its rows, or sent before this release. On plain PostgreSQL nothing runs."""

from django.db import migrations


def backfill(apps, schema_editor):
    from logs.citus import is_citus
    from webhooks.message_environments import backfill

    if is_citus(schema_editor.connection):
        with schema_editor.connection.cursor() as cursor:
            backfill(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_message_environment"),
        ("logs", "0015_citus_distribute"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
