# The nightly purge of finished stream messages deletes by age in batches along an index of
# created_at (config/batches.py); without one, each batch walked the primary key from the
# newest message down. Built concurrently: every recorded event may add messages.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("stream", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="streammessage",
            index=models.Index(fields=["created_at"], name="stream_msg_created"),
        ),
    ]
