"""SMS and voice calls through the `twilio` package.

Each environment sends with its own Twilio account when the console has one for it (Twilio
credentials), else with the install's (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
TWILIO_FROM_NUMBER). TWILIO_API_BASE_URL replaces https://api.twilio.com (tests point it at a
local server that speaks Twilio's REST protocol). Status callbacks go to our own receivers
under PUBLIC_BASE_URL, which is also what their signatures are computed over, with
`?env=<client id>`: the receiver then verifies them with that environment's token and applies
them to that environment's messages only.
"""

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from accounts.models import Environment
from logs.vocabulary import Channel
from notifications.providers.base import (
    Accepted,
    OutgoingMessage,
    Provider,
    ProviderError,
    answer_of,
    unexpected,
)
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
    # Calls made at once by send_many (threads: each call is an HTTPS request that waits on
    # Twilio); the database reads before them stay in the caller's thread.
    concurrency = 8

    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def send(self, message: OutgoingMessage) -> Accepted:
        return self._call(self._request(message, {}))

    def send_many(
        self, messages: Sequence[OutgoingMessage], *, start_by: float
    ) -> list[Accepted | Exception | None]:
        """The requests are built here (the environments' accounts read once each), then
        made `concurrency` at a time; one not started by `start_by` is not made (None)."""
        environments: dict[int, Environment] = {}
        requests: list[_Request | ProviderError] = []
        for message in messages:
            try:
                requests.append(self._request(message, environments))
            except ProviderError as exc:
                requests.append(exc)
        results: list[Accepted | Exception | None] = [None] * len(messages)
        stop = threading.Event()

        def call(index: int) -> None:
            request = requests[index]
            if isinstance(request, ProviderError):
                results[index] = request
                return
            if index and (stop.is_set() or time.monotonic() > start_by):
                return
            results[index] = answer_of(self._call, request)
            if unexpected(results[index]):
                stop.set()

        if len(messages) == 1:
            call(0)
        else:
            list(self._threads().map(call, range(len(messages))))
        return results

    def _threads(self) -> ThreadPoolExecutor:
        # Made in the process that sends (a Celery worker's child, after the fork).
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="twilio")
            self._pool_pid = os.getpid()
        return self._pool

    def _request(self, message: OutgoingMessage, environments: dict[int, Environment]):
        """What to POST for `message`: everything read from the database, in this thread."""
        environment = environments.get(message.environment_id)
        if environment is None:
            # all_objects: an environment being deleted still finishes what it had accepted.
            environment = environments[message.environment_id] = (
                Environment.all_objects.select_related("twilio_credentials").get(
                    id=message.environment_id
                )
            )
        try:
            account = twilio_account_for(environment=environment)
        except TwilioCredentialsUnreadable as exc:
            raise ProviderError(str(exc), code="credentials") from None
        return _Request(message, account, environment.client_id)

    def _call(self, request: "_Request") -> Accepted:
        """The HTTPS request itself: no database here (it may run in a pool thread)."""
        message, account, client_id = request.message, request.account, request.client_id
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
                        "/webhooks/twilio/voice/", client_id=client_id
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
                        "/webhooks/twilio/sms/", client_id=client_id
                    ),
                )
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors too
            raise _error(exc) from None
        return Accepted(provider_message_id=created.sid, reports_delivery=True)


@dataclass(frozen=True)
class _Request:
    message: OutgoingMessage
    account: TwilioAccount
    client_id: str
