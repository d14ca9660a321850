"""SMS and voice calls through the `twilio` package.

TWILIO_API_BASE_URL replaces https://api.twilio.com (tests point it at a local server that
speaks Twilio's REST protocol). Status callbacks go to our own receivers under
PUBLIC_BASE_URL, which is also what their signatures are computed over.
"""

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from logs.vocabulary import Channel
from notifications.providers.base import Accepted, OutgoingMessage, Provider, ProviderError

# Seconds a call rings before Twilio gives up (the seed's "no one answered after 30 seconds").
CALL_RING_TIMEOUT = 30
HTTP_TIMEOUT = 15
CALL_STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def twilio_client() -> Client:
    client = Client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT),
    )
    client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


def _error(exc: Exception) -> ProviderError:
    if isinstance(exc, TwilioRestException):
        transient = exc.status >= 500 or exc.status == 429
        # WORKAROUND: the client prefixes Twilio's own message with what it was doing.
        message = str(exc.msg).removeprefix("Unable to create record: ")
        return ProviderError(message, code=str(exc.code or exc.status), transient=transient)
    # Connection refused, timeouts, TLS errors: Twilio may answer a later attempt.
    return ProviderError(f"Twilio unreachable: {exc}", code="connection", transient=True)


class TwilioProvider(Provider):
    name = "twilio"

    def send(self, message: OutgoingMessage) -> Accepted:
        base = settings.PUBLIC_BASE_URL
        try:
            client = twilio_client()
            if message.channel == Channel.CALL:
                twiml = VoiceResponse()
                twiml.say(message.content.text)
                created = client.calls.create(
                    to=message.destination,
                    from_=settings.TWILIO_FROM_NUMBER,
                    twiml=str(twiml),
                    status_callback=f"{base}/webhooks/twilio/voice/",
                    status_callback_event=CALL_STATUS_EVENTS,
                    timeout=CALL_RING_TIMEOUT,
                )
            else:
                created = client.messages.create(
                    to=message.destination,
                    from_=settings.TWILIO_FROM_NUMBER,
                    body=message.content.text,
                    status_callback=f"{base}/webhooks/twilio/sms/",
                )
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors too
            raise _error(exc) from None
        return Accepted(provider_message_id=created.sid, reports_delivery=True)
