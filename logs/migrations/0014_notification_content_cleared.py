"""The notification's content_cleared_after (logs/content_retention.py): a nullable column
with no default and no CHECK, so adding it to the partitioned table is a catalog change on
each partition (no scan, no rewrite), under a lock held for milliseconds."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0013_log_content_compression"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="content_cleared_after",
            field=models.SmallIntegerField(blank=True, editable=False, null=True),
        ),
    ]
