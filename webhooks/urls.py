"""/webhooks/: Twilio's status callbacks, and email tracking for every ESP django-anymail
supports under /webhooks/email/<esp>/tracking/ (stored in the inbox before the 2xx)."""

from django.urls import include, path

from webhooks.receivers.email import email_urlpatterns
from webhooks.receivers.twilio import TwilioSmsReceiver, TwilioVoiceReceiver

urlpatterns = [
    path("twilio/sms/", TwilioSmsReceiver.as_view(), name="twilio-sms"),
    path("twilio/voice/", TwilioVoiceReceiver.as_view(), name="twilio-voice"),
    # Our storing wrappers of anymail's tracking views first; anymail's own URLs after them
    # (its inbound endpoints).
    path("email/", include(email_urlpatterns())),
    path("email/", include("anymail.urls")),
]
