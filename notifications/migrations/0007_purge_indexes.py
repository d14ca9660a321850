# The nightly purge of in-app items and the sandbox's record deletes by age in batches along
# an index of the age column (config/batches.py); without one, each batch read the whole
# table. Built concurrently: both tables are written by every send.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0006_outbox_claim"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="inappnotification",
            index=models.Index(
                fields=["notification_created_at"], name="in_app_notification_created"
            ),
        ),
        AddIndexConcurrently(
            model_name="sandboxmessage",
            index=models.Index(fields=["created_at"], name="sandbox_message_created"),
        ),
    ]
