"""Writes of the alerts app that are not evaluation (alerts.evaluation) or notices."""

from datetime import datetime, timedelta

from django.utils import timezone

from alerts.models import MinuteCount
from alerts.vocabulary import WINDOW_MINUTES_MAX


def minute_counts_purge(*, now: datetime | None = None) -> int:
    """Counter rows past the longest window (plus an hour) are never read again."""
    cutoff = (now or timezone.now()) - timedelta(minutes=WINDOW_MINUTES_MAX + 60)
    deleted, _ = MinuteCount.objects.filter(minute__lt=cutoff).delete()
    return deleted
