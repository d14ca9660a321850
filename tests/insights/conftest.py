import pytest

from tests.webhooks.conftest import celery_eager, webhook_settings  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _refusal_counts_cleared():
    """Refused callbacks are counted in Redis, which no test transaction rolls back."""
    from config.counters import counters_clear
    from insights.services import REFUSALS_COUNTER

    counters_clear(REFUSALS_COUNTER)


@pytest.fixture(autouse=True)
def _metrics_window_forgotten():
    """/metrics keeps its window counts in the shared cache (Redis), which no test transaction
    rolls back: each test starts counting afresh."""
    from django.core.cache import cache

    from insights.metrics import WINDOW_CACHE_KEY

    cache.delete(WINDOW_CACHE_KEY)
    yield
    cache.delete(WINDOW_CACHE_KEY)
