"""Writes of the alerts app that are not evaluation (alerts.evaluation) or notices."""

from datetime import datetime, timedelta

from django.utils import timezone

from alerts.models import MinuteCount
from alerts.vocabulary import WINDOW_MINUTES_MAX
from config.batches import rows_delete


def minute_counts_purge(*, now: datetime | None = None) -> int:
    """Counter rows past the longest window (plus an hour) are never read again."""
    cutoff = (now or timezone.now()) - timedelta(minutes=WINDOW_MINUTES_MAX + 60)
    # Hundreds of thousands of rows an hour at volume: in short batches (config/batches.py).
    return rows_delete(MinuteCount.objects.filter(minute__lt=cutoff), order_by="minute")
