"""The insights page says what it shows: the Period dropdown names the period on screen, the
caption names the bucket (hour or day), the breakdown chart labels its axes, and no two
series share a colour (the page's HTML here; the rendered SVG in Chromium below)."""

import os
import re
from itertools import combinations
from pathlib import Path
from xml.etree import ElementTree

import pytest
from playwright.sync_api import expect, sync_playwright

from insights.services import rollups_fold
from tests.factories import EnvironmentFactory, UserFactory
from tests.insights.helpers import notification_with

PAGE = "/admin/insights/hourlyrollup/"
SVG = "{http://www.w3.org/2000/svg}"
PASSWORD = "correct horse battery staple"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _traffic():
    environment = EnvironmentFactory()
    notification_with(
        environment, [("sent", "email"), ("delivered", "email"), ("engagement", "email", "opened")]
    )
    notification_with(environment, [("sent", "sms"), ("failed", "sms", "undelivered")],
                      type_="password_reset", user_id="usr_b")  # fmt: skip
    notification_with(environment, [("ignored", "email", "user_preference")], type_="newsletter")
    rollups_fold()
    return environment


def _chart(body: str, name: str) -> str:
    start = body.index(f'id="chart-{name}"')
    return body[start : body.index("</svg>", start)]


def _svg(body: str, name: str) -> str:
    chart = _chart(body, name)
    return chart[chart.index("<svg") :] + "</svg>"


def _axis_texts(svg, axis: str) -> list[str]:
    [group] = [g for g in svg.iter(f"{SVG}g") if g.get("class", "").startswith(f"axis {axis}")]
    return [e.text for e in group.iter(f"{SVG}text") if e.text]


def _rgb(colour: str) -> tuple[int, ...]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))


def _far_apart(colours: list[str]) -> float:
    """The smallest distance between two of the colours (RGB, 0 to 441): pygal's default
    palette gave Sent #F44336 and Engaged #FF5722, 30 apart."""
    return min(
        sum((x - y) ** 2 for x, y in zip(_rgb(a), _rgb(b), strict=True)) ** 0.5
        for a, b in combinations(colours, 2)
    )


@pytest.mark.django_db
def test_the_period_dropdown_shows_the_period_on_screen(admin_client):
    environment = _traffic()
    body = admin_client.get(PAGE, {"environment": environment.id}).content.decode()
    assert "Last 7 days" in body.split('id="insights-totals"')[1]  # what the page shows
    assert re.search(r'<option value="7d" selected>Last 7 days</option>', body)
    assert not re.search(r'<option value="24h" selected>', body)

    body = admin_client.get(PAGE, {"environment": environment.id, "period": "30d"}).content
    assert re.search(r'<option value="30d" selected>', body.decode())


@pytest.mark.django_db
@pytest.mark.parametrize(("period", "per"), [("24h", "hour"), ("7d", "hour"), ("30d", "day")])
def test_the_caption_says_per_day_when_it_is(admin_client, period, per):
    environment = _traffic()
    response = admin_client.get(PAGE, {"environment": environment.id, "period": period})
    body = response.content.decode()
    caption = re.search(r'<span id="insights-caption">([^<]*)</span>', body).group(1)
    other = "day" if per == "hour" else "hour"
    assert f"per {per}" in caption and other not in caption
    assert f"Counts per {per}" in _chart(body, "counts")
    assert f"{per.capitalize()} (UTC)" in _chart(body, "counts")  # the x axis's title


@pytest.mark.django_db
def test_the_breakdown_chart_labels_its_axes(admin_client):
    environment = _traffic()
    body = admin_client.get(PAGE, {"environment": environment.id}).content.decode()
    chart = ElementTree.fromstring(_svg(body, "breakdown"))  # noqa: S314 (our page's SVG)
    assert {"order_tracking", "password_reset", "newsletter"} <= set(_axis_texts(chart, "x"))
    titles = {e.text for e in chart.iter(f"{SVG}text") if "title" in e.get("class", "").split()}
    assert {"Type", "Deliveries"} <= titles
    # Whole counts: no 0.1, 0.2… on the y axis.
    assert all("." not in label for label in _axis_texts(chart, "y"))


@pytest.mark.django_db
def test_each_series_has_its_own_colour_in_each_chart(admin_client):
    environment = _traffic()
    body = admin_client.get(PAGE, {"environment": environment.id}).content.decode()
    for name, count in [("counts", 5), ("rates", 4), ("breakdown", 5)]:
        chart = _chart(body, name)
        colours = [
            re.search(rf"\.color-{i},[^{{]*\{{stroke:(#[0-9a-fA-F]{{6}})", chart).group(1)
            for i in range(count)
        ]
        assert _far_apart(colours) > 60, (name, colours)


@pytest.fixture
def browser_page():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see tests/console/test_browser.py
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: install it (apt-get install chromium).")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            context.set_default_timeout(30_000)
            yield context.new_page()
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_page_names_its_period_and_draws_distinct_series(live_server, browser_page):
    environment = _traffic()
    UserFactory(username="boss", is_superuser=True, password=PASSWORD)
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next={PAGE}?environment={environment.id}")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#chart-counts svg.pygal-chart")

    # What the select shows is what the page shows.
    shown = page.locator("#id_period option:checked").text_content()
    assert shown == "Last 7 days"
    expect(page.locator("#insights-totals tbody td").first).to_have_text("Last 7 days")

    page.select_option("#id_period", "30d")
    page.click("#insights-filters input[type=submit]")
    expect(page.locator("#insights-caption")).to_contain_text("per day")
    assert page.locator("#id_period option:checked").text_content() == "Last 30 days"

    # The colours Chromium paints the counts chart's lines with (Sent … Engaged).
    strokes = [
        page.locator(f"#chart-counts .serie-{i} path.line").first.evaluate(
            "e => getComputedStyle(e).stroke"
        )
        for i in range(5)
    ]
    colours = ["#" + "".join(f"{int(n):02x}" for n in re.findall(r"\d+", s)[:3]) for s in strokes]
    assert _far_apart(colours) > 60, colours

    # The breakdown's bars are named on the x axis.
    x_labels = page.locator("#chart-breakdown .axis.x text").all_text_contents()
    assert {"order_tracking", "password_reset", "newsletter"} <= set(x_labels)
