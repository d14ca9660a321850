# A dispatch's claim on its outbox row, replacing the session advisory lock (which a pooler
# in transaction mode cannot keep). Two nullable columns on a small queue table: a catalog
# change only.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_sender_domains")]

    operations = [
        migrations.AddField(
            model_name="outbox",
            name="claimed_by",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outbox",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
