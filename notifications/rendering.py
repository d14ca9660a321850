"""Rendering a channel's content with python-liquid, as NotificationAPI's templates (LiquidJS
syntax): merge tags first, then the request's `replace` pairs, literally and case-sensitively.

A missing merge tag is an error, not an empty string: a notification that says "Hi ," is a
bug the integrator should see in the timeline, so `RenderError` names the field and the tag.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liquid import Environment, StrictUndefined
from liquid.exceptions import LiquidError

_LIQUID = Environment(undefined=StrictUndefined, autoescape=False)


class RenderError(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def _parse(source: str):
    # A type's templates are rendered for every send: parse each source once per process.
    return _LIQUID.from_string(source)


@dataclass(frozen=True)
class Content:
    """A channel's content as sent (empty strings where the channel has no such part)."""

    subject: str = ""
    html: str = ""
    text: str = ""
    url: str = ""
    image: str = ""


def _render_one(
    source: str, merge_tags: Mapping[str, Any], replace: Mapping[str, str], part: str
) -> str:
    if not source:
        return ""
    try:
        rendered = _parse(source).render(**merge_tags)
    except LiquidError as exc:
        # The first line of python-liquid's message names the tag ("'order' is undefined").
        reason = str(exc).splitlines()[0]
        raise RenderError(f"Template error in the {part}: {reason}.") from None
    for old, new in replace.items():
        if old:
            rendered = rendered.replace(old, new)
    return rendered


def content_render(
    *, parts: Mapping[str, str], merge_tags: Mapping[str, Any], replace: Mapping[str, str]
) -> Content:
    """Render each part (subject, html, text, url, image) of a channel's content."""
    return Content(
        **{
            part: _render_one(source, merge_tags, replace, part)
            for part, source in parts.items()
            if part in Content.__dataclass_fields__
        }
    )
