from tests.webhooks.conftest import celery_eager, webhook_settings  # noqa: F401 (fixtures)
