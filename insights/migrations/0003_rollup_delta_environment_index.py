# RollupDelta's foreign key to the environment had no index: deleting an environment made
# the database's cascade (or the batched tenant deletion) read the whole delta table for each
# environment, and rollups_rebuild's DELETE of a range of hours did too. Built concurrently:
# deltas are appended by every recorded event, and a plain CREATE INDEX would block them.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0004_invitation"),
        ("insights", "0002_callback_refusals_in_redis"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="rollupdelta",
            index=models.Index(fields=["environment", "hour"], name="rollup_delta_env_hour"),
        ),
    ]
