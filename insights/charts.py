"""Server-rendered SVG charts (pygal): no JavaScript build, no CDN.

WORKAROUND: pygal links its tooltip script from a CDN by default (`js`); the console must
work offline and under a strict CSP, so charts carry no script: the values are in the SVG
(`<desc class="value">`) and in the table under each chart.
"""

import hashlib
import pickle

import pygal
from django.core.cache import cache
from pygal.style import Style

from insights.selectors import Counts, Series

COUNT_SERIES = ("sent", "delivered", "failed", "ignored", "engaged")
RATE_SERIES = ("delivered", "failed", "ignored", "engaged")
# One colour per meaning, the console's tones (console/static/console/console.css): blue moves,
# green arrived, red failed, amber skipped, purple engaged. pygal's default palette gave Sent
# red (#F44336) and Engaged deep orange (#FF5722), which read as the same series, and Failed
# a teal. A series keeps its colour in every chart (Delivered is green in counts and rates).
SERIES_COLOURS = {
    "sent": "#1d64c8",
    "delivered": "#177245",
    "failed": "#c0262d",
    "ignored": "#9a6700",
    "engaged": "#6f42c1",
}
# Dots carry each value (and its tooltip) but cost pygal ~1.5 ms apiece to draw: a week of
# hours (168 x 5 dots) took 290 ms a chart. Beyond this many points a chart is lines only
# and the table under it holds the numbers.
DOTS_MAX_POINTS = 48
# A chart is a pure function of its numbers, so it is cached under a digest of them: a page
# shown again before the next fold (or another viewer's identical page) skips pygal's ~50 ms
# a chart. A changed number is a new key; stale entries just expire.
CHART_CACHE_SECONDS = 600
# Part of every key: a change to how charts are drawn (colours, labels) is not answered with
# a chart drawn the old way.
CHART_VERSION = 2


def _cached(kind: str, render, *inputs) -> str:
    digest = hashlib.sha256(pickle.dumps((CHART_VERSION, kind, *inputs))).hexdigest()
    key = f"insights:chart:{digest}"
    svg = cache.get(key)
    if svg is None:
        svg = render()
        cache.set(key, svg, CHART_CACHE_SECONDS)
    return svg


def _style(series: tuple[str, ...]) -> Style:
    return Style(
        colors=tuple(SERIES_COLOURS[name] for name in series),
        background="white",
        plot_background="white",
        foreground="#333",
        foreground_strong="#111",
        foreground_subtle="#888",
        opacity=".85",
        opacity_hover=".95",
    )


def _config(title: str, series: tuple[str, ...], **extra) -> dict:
    return {
        "title": title,
        "js": [],
        "disable_xml_declaration": True,
        "style": _style(series),
        "width": 900,
        "height": 320,
        "show_minor_x_labels": False,
        "x_label_rotation": 30,
        "legend_at_bottom": True,
        "truncate_label": 40,
        **extra,
    }


def _whole_ticks(values) -> dict:
    """Counts are whole: y labels at whole steps (about ten), not pygal's 0.1, 0.2… for a
    chart whose largest count is 1."""
    top = max(max(values, default=0), 1)
    step = max(1, -(-top // 10))  # ceil(top / 10)
    return {"y_labels": list(range(0, top + step, step))}


def _dots(series: Series) -> dict:
    return {"show_dots": len(series.buckets) <= DOTS_MAX_POINTS, "dots_size": 2}


def _labels(series: Series, granularity: str) -> list[str]:
    fmt = "%Y-%m-%d %H:00" if granularity == "hour" else "%Y-%m-%d"
    return [bucket.strftime(fmt) for bucket in series.buckets]


def _major(labels: list[str]) -> list[str]:
    # About a dozen readable labels on the x axis, whatever the number of buckets.
    step = max(1, len(labels) // 12)
    return labels[::step]


def _counts_svg(series: Series, granularity: str, title: str) -> str:
    values = {
        name: [getattr(series.counts[b], name) for b in series.buckets] for name in COUNT_SERIES
    }
    top = _whole_ticks(v for each in values.values() for v in each)
    chart = pygal.Line(
        **_config(
            title,
            COUNT_SERIES,
            x_title=f"{granularity.capitalize()} (UTC)",
            y_title="Deliveries",
            **top,
            **_dots(series),
        )
    )
    labels = _labels(series, granularity)
    chart.x_labels = labels
    chart.x_labels_major = _major(labels)
    for name in COUNT_SERIES:
        chart.add(name.capitalize(), values[name])
    return chart.render(is_unicode=True)


def _rates_svg(series: Series, granularity: str, title: str) -> str:
    chart = pygal.Line(
        **_config(
            title,
            RATE_SERIES,
            range=(0, 100),
            value_formatter=lambda v: f"{v}%",
            x_title=f"{granularity.capitalize()} (UTC)",
            y_title="% of deliveries",
            **_dots(series),
        )
    )
    labels = _labels(series, granularity)
    chart.x_labels = labels
    chart.x_labels_major = _major(labels)
    for name in RATE_SERIES:
        chart.add(f"{name.capitalize()} %", [series.counts[b].rates[name] for b in series.buckets])
    return chart.render(is_unicode=True)


def _breakdown_svg(breakdown: list[tuple[str, Counts]], title: str, dimension: str) -> str:
    # Every bar group is labelled: _config hides minor x labels (the time charts' dozen major
    # ones are enough) and a bar chart names no major ones, so its axis had no label at all.
    values = {name: [getattr(counts, name) for _, counts in breakdown] for name in COUNT_SERIES}
    chart = pygal.Bar(
        **_config(
            title,
            COUNT_SERIES,
            show_minor_x_labels=True,
            x_title=dimension.capitalize(),
            y_title="Deliveries",
            **_whole_ticks(v for each in values.values() for v in each),
        )
    )
    chart.x_labels = [label or "(none)" for label, _ in breakdown]
    for name in COUNT_SERIES:
        chart.add(name.capitalize(), values[name])
    return chart.render(is_unicode=True)


def counts_chart(series: Series, *, granularity: str, title: str) -> str:
    return _cached(
        "counts", lambda: _counts_svg(series, granularity, title), series, granularity, title
    )


def rates_chart(series: Series, *, granularity: str, title: str) -> str:
    return _cached(
        "rates", lambda: _rates_svg(series, granularity, title), series, granularity, title
    )


def breakdown_chart(breakdown: list[tuple[str, Counts]], *, title: str, dimension: str) -> str:
    return _cached(
        "breakdown",
        lambda: _breakdown_svg(breakdown, title, dimension),
        breakdown,
        title,
        dimension,
    )
