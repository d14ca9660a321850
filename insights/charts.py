"""Server-rendered SVG charts (pygal): no JavaScript build, no CDN.

WORKAROUND: pygal links its tooltip script from a CDN by default (`js`); the console must
work offline and under a strict CSP, so charts carry no script: the values are in the SVG
(`<desc class="value">`) and in the table under each chart.
"""

import pygal
from pygal.style import DefaultStyle

from insights.selectors import Counts, Series

COUNT_SERIES = ("sent", "delivered", "failed", "ignored", "engaged")
RATE_SERIES = ("delivered", "failed", "ignored", "engaged")


def _config(title: str, **extra) -> dict:
    return {
        "title": title,
        "js": [],
        "disable_xml_declaration": True,
        "style": DefaultStyle,
        "width": 900,
        "height": 320,
        "show_minor_x_labels": False,
        "x_label_rotation": 30,
        "legend_at_bottom": True,
        "truncate_label": 40,
        **extra,
    }


def _labels(series: Series, granularity: str) -> list[str]:
    fmt = "%Y-%m-%d %H:00" if granularity == "hour" else "%Y-%m-%d"
    return [bucket.strftime(fmt) for bucket in series.buckets]


def _major(labels: list[str]) -> list[str]:
    # About a dozen readable labels on the x axis, whatever the number of buckets.
    step = max(1, len(labels) // 12)
    return labels[::step]


def counts_chart(series: Series, *, granularity: str, title: str) -> str:
    chart = pygal.Line(**_config(title, dots_size=2))
    labels = _labels(series, granularity)
    chart.x_labels = labels
    chart.x_labels_major = _major(labels)
    for name in COUNT_SERIES:
        chart.add(name.capitalize(), [getattr(series.counts[b], name) for b in series.buckets])
    return chart.render(is_unicode=True)


def rates_chart(series: Series, *, granularity: str, title: str) -> str:
    chart = pygal.Line(**_config(title, range=(0, 100), value_formatter=lambda v: f"{v}%"))
    labels = _labels(series, granularity)
    chart.x_labels = labels
    chart.x_labels_major = _major(labels)
    for name in RATE_SERIES:
        chart.add(f"{name.capitalize()} %", [series.counts[b].rates[name] for b in series.buckets])
    return chart.render(is_unicode=True)


def breakdown_chart(breakdown: list[tuple[str, Counts]], *, title: str) -> str:
    chart = pygal.Bar(**_config(title))
    chart.x_labels = [label or "(none)" for label, _ in breakdown]
    for name in COUNT_SERIES:
        chart.add(name.capitalize(), [getattr(counts, name) for _, counts in breakdown])
    return chart.render(is_unicode=True)
