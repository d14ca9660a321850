"""What the access audit costs: the console's notification page with the audit on (one
AccessRecord INSERT per page, audit/services.py) against the same page with it off, measured
in the same run on the same seed, the two alternating call by call so load on the machine
falls on both alike. Goal (issue 20): the page with the audit on within 10% of it off
(`vs baseline` at most 1.10x).

The data is bench/selectors.py's seed (the same run.once key as bench/console.py).
"""

import time

from django.conf import settings

from bench.console import _NotificationPage
from bench.harness import Measurement, register

GOAL = 1.10


@register
class AuditedNotificationPage(_NotificationPage):
    name = "audit.notification_page"
    description = "the notification page with the access audit on, against it off (same run)"
    note = "notification page, test client, support user"

    def _timed(self, audit: bool) -> float:
        settings.AUDIT_ACCESS = audit
        start = time.perf_counter()
        self.call()
        return (time.perf_counter() - start) * 1000

    def measure(self, run):
        repeat = max(self.size["repeat"] * 4, 20)
        samples: dict[bool, list[float]] = {False: [], True: []}
        try:
            for audit in (False, True):  # warm both paths
                self._timed(audit)
            for index in range(repeat):
                # Alternate which goes first, so neither always follows the other.
                order = (False, True) if index % 2 == 0 else (True, False)
                for audit in order:
                    samples[audit].append(self._timed(audit))
        finally:
            settings.AUDIT_ACCESS = True
        off = f"{self.name}.off"
        return {
            off: Measurement.from_samples(
                samples[False], "ms/call", baseline=off, note=f"{self.note}, audit off"
            ),
            f"{self.name}.on": Measurement.from_samples(
                samples[True],
                "ms/call",
                baseline=off,
                note=f"{self.note}, audit on (goal: at most {GOAL:.2f}x of off)",
            ),
        }
