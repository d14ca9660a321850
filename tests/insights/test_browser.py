"""A real browser opens the insights page and reads a chart whose numbers are the log's."""

import pytest
from playwright.sync_api import sync_playwright

from insights.services import rollups_fold
from logs.models import Delivery, Event
from tests.factories import EnvironmentFactory, UserFactory
from tests.insights.helpers import notification_with

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"


def _deliveries_reaching(environment, kind: str) -> int:
    # Straight from the log: deliveries with at least one event of the kind.
    return (
        Event.objects.filter(environment=environment, kind=kind)
        .exclude(channel="")
        .values("notification_id", "channel")
        .distinct()
        .count()
    )


@pytest.mark.django_db(transaction=True)
def test_the_insights_chart_shows_the_logs_numbers(live_server):
    environment = EnvironmentFactory()
    for index in range(4):
        notification_with(
            environment, [("sent", "email"), ("delivered", "email")], user_id=f"u{index}"
        )
    notification_with(environment, [("sent", "sms"), ("failed", "sms", "undelivered")])
    notification_with(
        environment, [("sent", "call", "", "ringing"), ("sent", "call", "", "answered")]
    )
    rollups_fold()
    UserFactory(username="boss", is_superuser=True, password=PASSWORD)
    expected = {
        kind: _deliveries_reaching(environment, kind) for kind in ("sent", "delivered", "failed")
    }
    assert expected == {"sent": 6, "delivered": 4, "failed": 1}
    assert Delivery.objects.filter(environment=environment).count() == 6

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "boss")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.locator('a[href="/admin/insights/hourlyrollup/"]').first.click()
            page.select_option("#id_environment", str(environment.id))
            page.select_option("#id_period", "24h")
            page.click("#insights-filters input[type=submit]")
            page.wait_for_selector("#chart-counts svg.pygal-chart")

            # The counts chart's series, in order: Sent, Delivered, Failed, Ignored, Engaged.
            def series_total(index: int) -> float:
                values = page.locator(
                    f"#chart-counts .serie-{index} desc.value"
                ).all_text_contents()
                return sum(float(value) for value in values if value)

            shown = {
                "sent": series_total(0),
                "delivered": series_total(1),
                "failed": series_total(2),
            }
            table = {
                kind: int(page.locator(f'#insights-totals td[data-count="{kind}"]').inner_text())
                for kind in ("sent", "delivered", "failed")
            }
            legend = " ".join(page.locator("#chart-counts .legends").all_text_contents())
        finally:
            browser.close()

    assert shown == expected
    assert table == expected
    assert "Sent" in legend and "Delivered" in legend
