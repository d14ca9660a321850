"""Rendering a channel's content with python-liquid, as NotificationAPI's templates (LiquidJS
syntax): merge tags first, then the request's `replace` pairs, literally and case-sensitively.

A missing merge tag is an error, not an empty string: a notification that says "Hi ," is a
bug the integrator should see in the timeline, so `RenderError` names the field and the tag.

Templates come from tenants (inline content in any send, the catalogue in the console), so
every render is fenced (docs/architecture.md, "Rules that hold everywhere"):

- python-liquid's own limits: loop iterations (the product of nested loops' lengths, so a
  loop in a loop counts as its square), bytes written to the output, bytes held by variables
  the template assigns, and context depth;
- what those do not cover: a filter given or making a string longer than the output limit or
  a list longer than the loop limit (`{{ (1..99999999) | join }}` builds a 100-million item
  list inside one filter call, before any output limit can see it), and a wall-clock deadline
  on the whole render, checked on every loop iteration and filter call;
- the HTML part autoescapes merge tags (`{{ name }}` with "<script>" in it is shown, not run;
  a catalogue template that means to insert HTML from a merge tag writes `{{ x | safe }}`).
  Subjects, plain text, SMS and call scripts are not HTML and are not escaped.

A render that hits a limit raises RenderError saying which limit and the setting that sets it:
the channel is Failed with that reason, never retried. Inline templates (a send's own
content) are checked at intake (`template_check`) and never cached; only catalogue templates
are, so a tenant cannot fill a worker's memory with parsed one-off templates.
"""

import contextvars
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from liquid import BoundTemplate, Environment, RenderContext, StrictUndefined
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)

from logs.vocabulary import Channel

# The one content part that is HTML: merge tags are escaped in it, and only in it.
HTML_PART = "html"
# `render`/`include` have no loader here, so contexts nest only through loops and captures.
CONTEXT_DEPTH_LIMIT = 10

# When the render in progress must end (time.monotonic()), or None outside a render.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "template_deadline", default=None
)


class RenderError(ValueError):
    pass


class TemplateLimitError(ResourceLimitError):
    """A limit of ours (filter sizes, the deadline); the message says which and its setting."""

    def __init__(self, message: str):
        super().__init__(message, token=None)


@dataclass(frozen=True)
class Limits:
    loop_iterations: int
    output_bytes: int
    namespace_bytes: int
    render_seconds: float

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            loop_iterations=settings.TEMPLATE_LOOP_ITERATION_LIMIT,
            output_bytes=settings.TEMPLATE_OUTPUT_LIMIT_BYTES,
            namespace_bytes=settings.TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES,
            render_seconds=settings.TEMPLATE_RENDER_TIMEOUT_SECONDS,
        )


def _deadline_check() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError(
            f"rendering took longer than {settings.TEMPLATE_RENDER_TIMEOUT_SECONDS:g} s "
            "(TEMPLATE_RENDER_TIMEOUT_SECONDS)"
        )


def _until_deadline(items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        _deadline_check()
        yield item


class _FencedContext(RenderContext):
    def loop(self, namespace, forloop):
        # WORKAROUND: python-liquid has no per-iteration hook; every for and tablerow loop
        # draws its items from `forloop.it`, so the deadline is checked as each is drawn.
        forloop.it = _until_deadline(forloop.it)
        return super().loop(namespace, forloop)


class _FencedTemplate(BoundTemplate):
    context_class = _FencedContext


def _too_big(value: Any, limits: Limits) -> str:
    """Why `value` is too big to go into or come out of a filter, or ""."""
    if isinstance(value, str):
        if len(value) > limits.output_bytes:
            return f"a string over {limits.output_bytes} characters (TEMPLATE_OUTPUT_LIMIT_BYTES)"
    elif (
        isinstance(value, list | tuple | range | dict | set | frozenset)
        and len(value) > limits.loop_iterations
    ):
        return f"a list of over {limits.loop_iterations} items (TEMPLATE_LOOP_ITERATION_LIMIT)"
    return ""


def _join_size(items: Any, separator: Any, cap: int) -> int:
    """A lower bound on join's result, stopping once past `cap` (so it costs at most that)."""
    if not isinstance(items, list | tuple | range):
        return 0
    size = max(len(items) - 1, 0) * len(str(separator))
    for item in items:
        if size > cap:
            break
        size += len(item) if isinstance(item, str) else len(str(item))
    return size


def _replace_size(text: Any, old: Any, new: Any = "") -> int:
    if not isinstance(text, str):
        return 0
    old, new = str(old), str(new)
    return len(text) + text.count(old) * (len(new) - len(old))


# Filters whose result can be far bigger than their inputs, and the size they would make:
# join repeats its separator per item (and an item per reference: a list may hold one big
# string 10,000 times); replace inserts its replacement per match (every position, for "").
_RESULT_SIZE = {
    "join": lambda limits, left, separator=" ", *rest, **kw: _join_size(
        left, separator, limits.output_bytes
    ),
    "replace": lambda limits, left, *args, **kw: _replace_size(left, *args[:2]),
}


def _fenced_filter(name: str, func, limits: Limits):
    estimate = _RESULT_SIZE.get(name)

    @functools.wraps(func)  # keeps with_context / with_environment, which liquid reads
    def fenced(left, *args, **kwargs):
        _deadline_check()
        for value in (left, *args, *kwargs.values()):
            if why := _too_big(value, limits):
                raise TemplateLimitError(f"the {name} filter was given {why}")
        if estimate is not None and estimate(limits, left, *args) > limits.output_bytes:
            raise TemplateLimitError(
                f"the {name} filter would make a string over {limits.output_bytes} "
                "characters (TEMPLATE_OUTPUT_LIMIT_BYTES)"
            )
        result = func(left, *args, **kwargs)
        if why := _too_big(result, limits):
            raise TemplateLimitError(f"the {name} filter made {why}")
        return result

    return fenced


class _FencedEnvironment(Environment):
    template_class = _FencedTemplate
    context_depth_limit = CONTEXT_DEPTH_LIMIT

    def __init__(self, *, limits: Limits, autoescape: bool):
        self.limits = limits
        # python-liquid reads these from the instance (they are class defaults).
        self.loop_iteration_limit = limits.loop_iterations
        self.output_stream_limit = limits.output_bytes
        self.local_namespace_limit = limits.namespace_bytes
        super().__init__(undefined=StrictUndefined, autoescape=autoescape)

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        self.filters = {
            name: _fenced_filter(name, func, self.limits) for name, func in self.filters.items()
        }


@functools.lru_cache(maxsize=8)
def _environment(limits: Limits, autoescape: bool) -> _FencedEnvironment:
    # One per (limits, autoescape): the limits come from settings, which tests change.
    return _FencedEnvironment(limits=limits, autoescape=autoescape)


def _environment_for(part: str) -> _FencedEnvironment:
    return _environment(Limits.from_settings(), part == HTML_PART)


@functools.lru_cache(maxsize=1024)
def _parse_cached(source: str, environment: _FencedEnvironment) -> BoundTemplate:
    # A catalogue template is rendered for every send of its type: parse it once per process.
    return environment.from_string(source)


def template_check(source: str) -> None:
    """Refuse an inline template that is too long or not valid Liquid: ValueError saying why
    (the caller names the field). Parsed, not cached."""
    limit = settings.TEMPLATE_INLINE_MAX_CHARS
    if len(source) > limit:
        raise ValueError(
            f"is {len(source)} characters long, over the {limit} allowed for inline content "
            "(TEMPLATE_INLINE_MAX_CHARS): store long templates in the console's catalogue"
        )
    syntax_check(source)


def syntax_check(source: str) -> None:
    """ValueError saying why `source` is not a valid Liquid template (not cached)."""
    try:
        _environment_for("").from_string(source)
    except LiquidError as exc:
        raise ValueError(f"is not a valid Liquid template: {_first_line(exc)}") from None
    except RecursionError:
        raise ValueError("is nested too deeply to be a template") from None


def merge_tags_used(source: str) -> frozenset[str]:
    """The top-level merge tags a catalogue template reads (those it assigns itself aside)."""
    if not source:
        return frozenset()
    return _merge_tags_used(source)


@functools.lru_cache(maxsize=1024)
def _merge_tags_used(source: str) -> frozenset[str]:
    try:
        template = _parse_cached(source, _environment_for(""))
        return frozenset(template.global_variables(include_partials=False))
    except (LiquidError, RecursionError):
        return frozenset()  # a broken template fails at dispatch, saying why


# A channel's content parts, as a send may give them inline.
PARTS = ("subject", "html", "text", "url", "image")


def content_parts(
    *, channel: str, template: Mapping[str, str] | None, inline: Mapping[str, str]
) -> tuple[dict[str, str], frozenset[str]]:
    """The template source of each part a channel renders, from its catalogue template
    (subject, html, text; None when it has none) and the send's inline content, which wins
    part by part; and which parts came inline. The send path reads it to warn about missing
    merge tags, dispatch to render, so both see the same parts."""
    parts = {"subject": "", "html": "", "text": ""}
    if template is not None:
        parts.update(template)
        if channel == Channel.IN_APP:
            # The in-app title: the template's subject, else its text.
            parts.update(text=template["subject"] or template["text"], subject="", html="")
    given = {part: source for part, source in inline.items() if part in PARTS}
    parts.update(given)
    if channel == Channel.EMAIL and "html" in given and "text" not in given:
        parts["text"] = ""  # the template's text part belongs to the template's html
    return parts, frozenset(given)


@dataclass(frozen=True)
class Content:
    """A channel's content as sent (empty strings where the channel has no such part)."""

    subject: str = ""
    html: str = ""
    text: str = ""
    url: str = ""
    image: str = ""


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _limit_reason(exc: ResourceLimitError, limits: Limits) -> str:
    if isinstance(exc, LoopIterationLimitError):
        return (
            f"its loops would run over {limits.loop_iterations} iterations in all "
            "(TEMPLATE_LOOP_ITERATION_LIMIT)"
        )
    if isinstance(exc, OutputStreamLimitError):
        return f"it would write over {limits.output_bytes} bytes (TEMPLATE_OUTPUT_LIMIT_BYTES)"
    if isinstance(exc, LocalNamespaceLimitError):
        return (
            f"the variables it assigns would hold over {limits.namespace_bytes} bytes "
            "(TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES)"
        )
    if isinstance(exc, ContextDepthError):
        return f"it nests over {CONTEXT_DEPTH_LIMIT} levels deep"
    return _first_line(exc)


def _render_one(
    source: str,
    merge_tags: Mapping[str, Any],
    replace: Mapping[str, str],
    part: str,
    *,
    cache: bool,
) -> str:
    if not source:
        return ""
    environment = _environment_for(part)
    limits = environment.limits
    token = _deadline.set(time.monotonic() + limits.render_seconds)
    try:
        template = _parse_cached(source, environment) if cache else environment.from_string(source)
        rendered = template.render(**merge_tags)
    except ResourceLimitError as exc:
        raise RenderError(
            f"The {part} template went over a limit: {_limit_reason(exc, limits)}. Nothing "
            "was sent on this channel."
        ) from None
    except LiquidError as exc:
        # The first line of python-liquid's message names the tag ("'order' is undefined").
        raise RenderError(f"Template error in the {part}: {_first_line(exc)}.") from None
    except (RecursionError, MemoryError):
        raise RenderError(
            f"The {part} template went over a limit: it is nested too deeply or too big to "
            "render. Nothing was sent on this channel."
        ) from None
    finally:
        _deadline.reset(token)
    for old, new in replace.items():
        if old:
            rendered = rendered.replace(old, new)
    return rendered


def content_render(
    *,
    parts: Mapping[str, str],
    merge_tags: Mapping[str, Any],
    replace: Mapping[str, str],
    inline_parts: frozenset[str] | set[str] = frozenset(),
) -> Content:
    """Render each part (subject, html, text, url, image) of a channel's content. Parts named
    in `inline_parts` came with the send and are parsed afresh (never cached)."""
    return Content(
        **{
            part: _render_one(source, merge_tags, replace, part, cache=part not in inline_parts)
            for part, source in parts.items()
            if part in Content.__dataclass_fields__
        }
    )
