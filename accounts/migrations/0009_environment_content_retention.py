"""An environment's content retention and the content clearing's watermark
(logs/content_retention.py)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_api_key_manage_scope"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="content_cleared_through",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="content_cleared_through_id",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="content_retention_days",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text="Clear the content of notifications (subjects, bodies, merge tags, provider payloads) after this many days, keeping their timeline and metadata until the log's retention removes them. Fewer days than the log's retention; empty to keep content as long as the log.",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="content retention (days)",
            ),
        ),
    ]
