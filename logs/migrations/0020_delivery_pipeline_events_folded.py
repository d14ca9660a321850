"""The send pipeline's own events folded into the delivery (docs/event-storage.md): when the
first attempt's Sending and the pipeline's Sent were recorded, the email's sender and the
SEND_MAX_ATTEMPTS of the moment. Four nullable columns without default, so each is a catalog
change on every partition (no scan, no rewrite), its lock wait bounded and retried
(logs.migration_operations.PartitionedFieldAdd). Release N: writers fill them and still write
the rows; the readers merge both (logs/timeline.py), rows winning."""

from django.db import migrations, models

from logs.migration_operations import PartitionedFieldAdd


class Migration(migrations.Migration):
    atomic = False  # each column is its own short, bounded, retried transaction

    dependencies = [
        ("logs", "0019_event_payload_packed"),
    ]

    operations = [
        PartitionedFieldAdd(
            model_name="delivery",
            name="sending_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        PartitionedFieldAdd(
            model_name="delivery",
            name="accepted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        PartitionedFieldAdd(
            model_name="delivery",
            name="sender",
            field=models.TextField(blank=True, editable=False, null=True),
        ),
        PartitionedFieldAdd(
            model_name="delivery",
            name="send_max_attempts",
            field=models.SmallIntegerField(blank=True, editable=False, null=True),
        ),
    ]
