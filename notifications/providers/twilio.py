"""SMS and voice calls through the `twilio` package.

Each environment sends with its own Twilio account when the console has one for it (Twilio
credentials), else with the install's (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
TWILIO_FROM_NUMBER). TWILIO_API_BASE_URL replaces https://api.twilio.com (tests point it at a
local server that speaks Twilio's REST protocol). Status callbacks go to our own receivers
under PUBLIC_BASE_URL, which is also what their signatures are computed over, with
`?env=<client id>`: the receiver then verifies them with that environment's token and applies
them to that environment's messages only.
"""

from urllib.parse import urlencode

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from accounts.models import Environment
from logs.vocabulary import Channel
from notifications.providers.base import Accepted, OutgoingMessage, Provider, ProviderError
from notifications.selectors import TwilioAccount, TwilioCredentialsUnreadable, twilio_account_for

# Seconds a call rings before Twilio gives up (the seed's "no one answered after 30 seconds").
CALL_RING_TIMEOUT = 30
HTTP_TIMEOUT = 15
CALL_STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def twilio_client(account: TwilioAccount) -> Client:
    client = Client(
        account.account_sid,
        account.auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT),
    )
    client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


def status_callback_url(path: str, *, client_id: str) -> str:
    """Where Twilio reports a message's or call's progress: our receiver, naming the
    environment so its callbacks are verified with its token and touch only its messages."""
    return f"{settings.PUBLIC_BASE_URL}{path}?{urlencode({'env': client_id})}"


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
        # all_objects: an environment being deleted still finishes what it had accepted.
        environment = Environment.all_objects.select_related("twilio_credentials").get(
            id=message.environment_id
        )
        try:
            account = twilio_account_for(environment=environment)
        except TwilioCredentialsUnreadable as exc:
            raise ProviderError(str(exc), code="credentials") from None
        try:
            client = twilio_client(account)
            if message.channel == Channel.CALL:
                twiml = VoiceResponse()
                twiml.say(message.content.text)
                created = client.calls.create(
                    to=message.destination,
                    from_=account.from_number,
                    twiml=str(twiml),
                    status_callback=status_callback_url(
                        "/webhooks/twilio/voice/", client_id=environment.client_id
                    ),
                    status_callback_event=CALL_STATUS_EVENTS,
                    timeout=CALL_RING_TIMEOUT,
                )
            else:
                created = client.messages.create(
                    to=message.destination,
                    from_=account.from_number,
                    body=message.content.text,
                    status_callback=status_callback_url(
                        "/webhooks/twilio/sms/", client_id=environment.client_id
                    ),
                )
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors too
            raise _error(exc) from None
        return Accepted(provider_message_id=created.sid, reports_delivery=True)
