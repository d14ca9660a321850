"""A notification's merge tags are not stored twice: NULL in `merge_tags` when they are the
request's own (logs.models.request_merge_tags), which every send's are. The column only loses
its NOT NULL: a catalog change on the parent and each partition (no scan, no rewrite), under
a lock held for milliseconds. Rows written before keep their merge tags and read as before;
the model names the column `stored_merge_tags` and reads the merge tags through the
`merge_tags` property."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0020_delivery_pipeline_events_folded"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="merge_tags",
            field=models.JSONField(blank=True, db_column="merge_tags", null=True),
        ),
        migrations.RenameField(
            model_name="notification", old_name="merge_tags", new_name="stored_merge_tags"
        ),
    ]
