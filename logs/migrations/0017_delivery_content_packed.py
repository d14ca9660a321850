"""A delivery's content compressed with its template as dictionary (logs/content.py): the
dictionaries' table, and two nullable columns without default on the delivery, so adding them
to the partitioned table is a catalog change on each partition (no scan, no rewrite), under a
lock held for milliseconds. Rows written before keep their content in html and text, which
every reader still reads (logs.content.deliveries_content) until they age out."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_environment_content_retention"),
        ("logs", "0016_event_dedupe_key_hashed"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="content_dictionary_id",
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="delivery",
            name="content_packed",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ContentDictionary",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("sha256", models.BinaryField(max_length=32)),
                ("content", models.BinaryField()),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "environment",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="+",
                        to="accounts.environment",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "content dictionaries",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("environment", "sha256"), name="content_dictionary_unique"
                    )
                ],
            },
        ),
    ]
