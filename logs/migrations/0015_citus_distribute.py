from django.db import migrations

from logs.citus import distribute


def forwards(apps, schema_editor):
    distribute(schema_editor)


class Migration(migrations.Migration):
    """On Citus, distribute the log tables by environment_id (logs/citus.py); on plain
    PostgreSQL, nothing. Not reversible on Citus (undistribute_table by hand)."""

    atomic = False  # create_distributed_table moves data to the workers

    dependencies = [
        ("logs", "0014_notification_content_cleared"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
