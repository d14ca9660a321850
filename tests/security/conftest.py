from tests.alerts.conftest import slack  # noqa: F401  (a Slack incoming-webhook stand-in)
from tests.stream.conftest import celery_eager  # noqa: F401  (tasks run in-process on commit)
