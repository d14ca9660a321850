"""A channel's outgoing message: its content rendered from the template or the inline parts
(python-liquid, notifications/rendering.py), its address checked and its sender; a failure
of any is CannotSend (a Failed event naming the tag or field)."""

from email.utils import formataddr
from functools import lru_cache

from django.conf import settings
from django.utils.html import strip_tags

from logs.content import template_dictionary
from logs.vocabulary import Channel
from notifications.dispatch_load import Dispatch
from notifications.providers import OutgoingMessage
from notifications.rendering import Content, RenderError, content_parts, content_render
from notifications.services.sends import sender_refusal
from notifications.wire import CHANNEL_TO_WIRE


class CannotSend(Exception):
    """The channel cannot be sent (no template, render error, no address): Failed."""


def _template_parts(dispatch: Dispatch, channel: str) -> tuple[dict[str, str], frozenset[str]]:
    """Each part's template source, and which parts came inline with the send."""
    template = dispatch.templates.get(channel)
    inline = dispatch.send_request.content.get(channel, {})
    if template is None and not inline:
        raise CannotSend(
            f"{dispatch.notification.notification_type!r} has no "
            f"{dispatch.channel_label[channel]} template: add one in the console or send "
            f"inline content for {CHANNEL_TO_WIRE[channel]}."
        )
    return content_parts(
        channel=channel,
        template=None
        if template is None
        else {"subject": template.subject, "html": template.html, "text": template.text},
        inline=inline,
    )


def content_dictionary(dispatch: Dispatch, channel: str) -> bytes:
    """What the content is stored compressed with (logs/content.py): the template it was
    rendered from, but for the parts sent inline (no template); for an email without a text
    part, the text derived from the template's HTML as _content derives the sent one."""
    parts, inline_parts = _template_parts(dispatch, channel)
    html = "" if "html" in inline_parts else parts["html"]
    text = "" if "text" in inline_parts else parts["text"]
    if channel == Channel.EMAIL and not parts["text"] and html:
        text = _derived_text(html)
    return template_dictionary(html=html, text=text)


@lru_cache(maxsize=256)
def _derived_text(html: str) -> str:
    """The plain-text part of an HTML-only email (for a template, once per process)."""
    return strip_tags(html).strip()


def _content(dispatch: Dispatch, channel: str) -> Content:
    notification = dispatch.notification
    parts, inline_parts = _template_parts(dispatch, channel)
    try:
        # A render over a limit (loops, output, time) is a RenderError too: Failed, final.
        content = content_render(
            parts=parts,
            merge_tags=notification.merge_tags,
            replace=dispatch.send_request.replace,
            inline_parts=inline_parts,
        )
    except RenderError as exc:
        raise CannotSend(str(exc)) from None
    if channel == Channel.EMAIL and not content.text and content.html:
        # The plain-text part of an HTML-only template, so every client has something.
        content = Content(
            subject=content.subject, html=content.html, text=strip_tags(content.html).strip()
        )
    return content


_MISSING_ADDRESS = {
    Channel.EMAIL: ("email", "user.email"),
    Channel.SMS: ("number", "user.number"),
    Channel.CALL: ("number", "user.number"),
}


def _destination(dispatch: Dispatch, channel: str) -> str:
    if channel not in _MISSING_ADDRESS:
        return dispatch.notification.user_id
    column, field_name = _MISSING_ADDRESS[channel]
    address = getattr(dispatch.notification, column)
    if not address:
        raise CannotSend(
            f"No {field_name} for user {dispatch.notification.user_id!r}: send {field_name} "
            "or identify the user (POST /{clientId}/users/{userId}) first."
        )
    return address


def message_build(dispatch: Dispatch, channel: str) -> OutgoingMessage:
    notification = dispatch.notification
    destination = _destination(dispatch, channel)
    content = _content(dispatch, channel)
    options = dispatch.send_request.email_options
    inline = dispatch.send_request.content.get(channel, {})
    from_address = inline.get("from_address") or options.from_address
    from_name = inline.get("from_name") or options.from_name
    if channel == Channel.EMAIL:
        # Checked at intake too; again here, for a domain an owner removed since.
        refusal = sender_refusal(
            environment_id=notification.environment_id,
            address=from_address,
            field_name="The From address",
        )
        if refusal:
            raise CannotSend(refusal)
    from_email = ""
    if from_address or from_name:
        from_email = formataddr((from_name, from_address or settings.DEFAULT_FROM_EMAIL))
    return OutgoingMessage(
        environment_id=notification.environment_id,
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        notification_type=notification.notification_type,
        channel=channel,
        user_id=notification.user_id,
        sub_notification_id=dispatch.send_request.sub_notification_id,
        destination=destination,
        content=content,
        from_email=from_email,
        reply_to=options.reply_to,
        cc=options.cc,
        bcc=options.bcc,
    )
