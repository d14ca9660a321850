"""An event's payload compressed with its provider's preset dictionary (logs/payloads.py): one
nullable column without default on the event, so adding it to the partitioned table is a
catalog change on each partition (no scan, no rewrite), under a lock held for milliseconds.
Rows written before keep their payload in `payload`, which every reader still reads
(logs.payloads.event_payload) until they age out."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0018_event_kind_indexes_rare_kinds_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="payload_packed",
            field=models.BinaryField(blank=True, null=True),
        ),
    ]
