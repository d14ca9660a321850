"""GET /metrics at the seeded size: what a Prometheus scrape costs.

`metrics.scrape_counted` counts the window (METRICS_WINDOW_SECONDS of notifications,
deliveries and callbacks) at every scrape: METRICS_CACHE_SECONDS=0, as every scrape did
before the window counts were kept. `metrics.scrape` is the default: the counts are kept in
the shared cache for METRICS_CACHE_SECONDS, so a scrape reads the backlogs and Redis only.
The note says how many notifications the window held (the seeded log spreads its rows over
its days: at ten million a day an hour holds some 400,000, and the counted row grows with it).
"""

from datetime import timedelta

from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import BenchmarkError, Measurement, Run, Scenario, register, time_calls
from bench.selectors import FULL, SMOKE, _seeded
from insights.metrics import WINDOW_CACHE_KEY
from logs.models import Notification

TOKEN = "bench-metrics-token-0123456789"  # noqa: S105 (the bench's own)


@register
class MetricsScrapeCounted(Scenario):
    name = "metrics.scrape_counted"
    baseline = None
    description = "GET /metrics counting the last hour of the log at every scrape"
    smoke_size = {**SMOKE, "scrapes": 10}
    full_size = {**FULL, "scrapes": 200}
    cache_seconds = 0.0

    def setup(self, run: Run) -> None:
        _seeded(run, self.size)
        self.client = Client()
        since = timezone.now() - timedelta(hours=1)
        self.in_window = Notification.objects.filter(created_at__gte=since).count()

    def _scrape(self) -> dict[str, float]:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        if response.status_code != 200:
            raise BenchmarkError(f"/metrics answered {response.status_code}")
        families = text_string_to_metric_families(response.content.decode())
        return {family.name: sum(sample.value for sample in family.samples) for family in families}

    def measure(self, run: Run) -> Measurement:
        cache.delete(WINDOW_CACHE_KEY)
        with override_settings(METRICS_TOKEN=TOKEN, METRICS_CACHE_SECONDS=self.cache_seconds):
            # Within a second of the count above: the window holds those notifications
            # (give or take the ones that left it meanwhile).
            counted = self._scrape()["notificationlog_notifications"]
            if abs(counted - self.in_window) > max(5, self.in_window // 100):
                raise BenchmarkError(
                    f"/metrics counts {counted:.0f} notifications in the window, the log "
                    f"{self.in_window}"
                )
            return time_calls(
                self._scrape,
                repeat=self.size["scrapes"],
                warmup=0,
                note=f"{self.in_window} notifications in the window",
            )


@register
class MetricsScrape(MetricsScrapeCounted):
    name = "metrics.scrape"
    baseline = "metrics.scrape_counted"
    description = "GET /metrics with the window counts kept for METRICS_CACHE_SECONDS (30)"
    cache_seconds = 30.0
