"""{% mailbox_link %}: the console's link to the development mailbox, for superusers."""

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def mailbox_link(context) -> str:
    user = getattr(context.get("request"), "user", None)
    if not settings.MAILBOX_ENABLED or user is None or not user.is_superuser:
        return ""
    return format_html('<a href="{}">Mailbox</a> / ', reverse("mailbox"))
