# A drain claims its subscription's next heads walking its pending messages in id order and
# stopping at a batch's worth; without this index each claim read and sorted every pending
# message of the subscription (a big backlog's every one, each claim). Built concurrently:
# every recorded event may add messages.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("stream", "0002_message_created_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="streammessage",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["subscription", "id"],
                name="stream_msg_queue",
            ),
        ),
    ]
