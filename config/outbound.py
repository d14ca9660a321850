"""Outbound HTTP to addresses a tenant gave us (stream subscribers, alert webhooks, and any
later one): one policy, one guarded transport, used when the address is saved and at every call.

The rule, as Sentry's `safe_urlopen` and Zulip's Smokescreen apply it:

- https only; plain http only to a loopback address, and only while the install allows it
  (OUTBOUND_ALLOW_LOOPBACK_HTTP: on in development, off in production);
- resolve the name once, refuse it unless every address is globally routable (ssrfguard's
  table from IANA's registries: loopback, private, link-local, CGNAT, multicast, unique-local,
  the IPv4-mapped, 6to4 and NAT64 forms of those, and the cloud metadata addresses), and
  connect to the address that was checked, so a second lookup cannot rebind the name;
- follow no redirect;
- a wall-clock deadline over the whole exchange (connect, TLS, request, answer), not httpx's
  per-operation timeout, which a peer trickling a byte at a time never trips;
- read at most RESPONSE_LIMIT_BYTES of the answer;
- what a tenant is told of a failure is coarse ("connection refused", "timed out", "HTTP
  500"): the exception's text would make the install a scanner of its own network.

ssrfguard does the resolving, checking and pinning (judged against safehttpx, which calls
Google's DNS over the internet and offers only an async GET). The deadline is ours: every
socket operation's timeout is cut to what is left of the call's deadline.

The name lookup itself (getaddrinfo) takes no timeout; the resolver's own (resolv.conf,
5 s a try by default) bounds it.
"""

import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from ssrfguard import BlockedAddressError, BlockedURLError, Policy, SSRFGuardError, resolve
from ssrfguard.httpx import SafeBackend, SafeTransport

# Enough for a status line's worth of an error page; the answer's body is never shown.
RESPONSE_LIMIT_BYTES = 4096
_LOOPBACK_NAMES = {"localhost"}
_LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
# A tenant's endpoint may listen on any port (https://hooks.example.com:8443/).
_ANY_PORT = frozenset(range(1, 65536))


@dataclass(frozen=True)
class OutboundResult:
    """One call's outcome: the status code (None when no answer came), a coarse error for
    the tenant ("" on 2xx), and at most RESPONSE_LIMIT_BYTES of the answer's body."""

    status_code: int | None
    error: str
    duration_ms: int
    body: bytes = b""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# --- the policy ------------------------------------------------------------------------------


def _loopback_allowed() -> bool:
    return settings.OUTBOUND_ALLOW_LOOPBACK_HTTP


def _policy(loopback: bool) -> Policy:
    if loopback:
        return Policy(
            allowed_schemes=frozenset({"https", "http"}),
            allowed_networks=tuple(ipaddress.ip_network(n) for n in _LOOPBACK_NETWORKS),
            allowed_ports=_ANY_PORT,
            max_redirects=0,
        )
    return Policy(allowed_schemes=frozenset({"https"}), allowed_ports=_ANY_PORT, max_redirects=0)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scheme_error(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        if _loopback_allowed():
            return None
        return (
            "Use an https:// address: plain http, even to a loopback address, is refused in "
            "production (OUTBOUND_ALLOW_LOOPBACK_HTTP allows it in development)."
        )
    hint = (
        " (plain http only to 127.0.0.1, ::1 or localhost, in development)"
        if _loopback_allowed()
        else ""
    )
    return f"Use an https:// address{hint}."


def url_check(url: str) -> None:
    """Raise ValidationError naming the rule when the install would refuse to call `url`.

    The name is resolved now, and refused if any address it has is not a public one. A name
    that does not resolve yet is accepted (its DNS may come later): every call resolves and
    checks it again, so it can never reach an internal address."""
    error = _scheme_error(url)
    if error:
        raise ValidationError(error, code="insecure")
    policy = _policy(_loopback_allowed())
    try:
        target = policy.check_url(url)
        resolve(target, policy=policy)
    except BlockedAddressError as exc:
        raise ValidationError(
            f"{urlsplit(url).hostname} is not a public internet address ({exc.reason}): "
            "the install calls only addresses on the public internet.",
            code="not_public",
        ) from None
    except BlockedURLError as exc:
        raise ValidationError(
            f"This address is refused ({exc.reason}): the install calls only addresses on the "
            "public internet.",
            code="not_public",
        ) from None
    except OSError:
        return  # does not resolve now; checked again at every call


# --- the deadline ----------------------------------------------------------------------------

_call = threading.local()


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """A socket operation's timeout, cut to what is left of the current call's deadline."""
    deadline = getattr(_call, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(
                ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """ssrfguard's backend (resolve once, check, connect to the checked address), its
    streams' every read and write bounded by the call's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend):
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host,
            port,
            timeout=_left(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return self._backend.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _Transport(SafeTransport):
    def __init__(self, *, policy: Policy, limits: httpx.Limits):
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(policy=policy, verify=ssl_context, trust_env=False, limits=limits)
        # ssrfguard builds its pool the same way (public httpcore API); this one's backend
        # also bounds every socket operation by the call's deadline.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(SafeBackend(policy=policy)),
        )


_transports: dict[tuple[int, bool], _Transport] = {}


def _transport() -> _Transport:
    """One transport per process (and loopback rule), kept: building one loads the CA bundle
    (about 100 ms), and its pool reuses connections to busy endpoints. Keyed by pid: a forked
    Celery child must not share its parent's sockets. A transport follows no redirect (only
    a client does)."""
    key = (os.getpid(), _loopback_allowed())
    if key not in _transports:
        # A stream drain posts on STREAM_DRAIN_CONCURRENCY threads: each keeps its
        # connection to the subscriber alive between messages.
        pool = max(20, settings.STREAM_DRAIN_CONCURRENCY)
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        _transports[key] = _Transport(policy=_policy(key[1]), limits=limits)
    return _transports[key]


# --- the call --------------------------------------------------------------------------------


def post(url: str, *, content: bytes, headers: dict[str, str], deadline: float) -> OutboundResult:
    """POST `content` to a tenant's `url`, all of it (connecting, TLS, sending, the answer's
    headers and at most RESPONSE_LIMIT_BYTES of its body) within `deadline` seconds. Never
    raises for the endpoint's behaviour: the result says what happened, coarsely."""
    started = time.monotonic()
    error = _scheme_error(url)
    if error:
        return OutboundResult(None, "address not allowed", 0)
    _call.deadline = started + deadline
    try:
        # Straight to the guarded transport (it checks the URL; its backend checks and pins
        # the address): httpx.Client's layers around it (cookies, auth, redirects, none of
        # them used here) were a third of a stream drain's CPU per event.
        request = httpx.Request(
            "POST",
            url,
            content=content,
            headers={**headers, "accept-encoding": "identity"},
            extensions={"timeout": httpx.Timeout(deadline).as_dict()},
        )
        response = _transport().handle_request(request)
        try:
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) >= RESPONSE_LIMIT_BYTES:
                    break  # the rest is never read; closing drops the connection
        finally:
            response.close()
    except (httpx.HTTPError, SSRFGuardError, OSError) as exc:
        return OutboundResult(None, coarse_error(exc), _elapsed_ms(started))
    finally:
        _call.deadline = None
    status = response.status_code
    error = "" if 200 <= status < 300 else f"HTTP {status}"
    return OutboundResult(status, error, _elapsed_ms(started), bytes(body[:RESPONSE_LIMIT_BYTES]))


def coarse_error(exc: BaseException) -> str:
    """What a tenant may be told of a failed call: the kind of failure, never the exception's
    text (addresses, ports and banners of what answered)."""
    if isinstance(exc, SSRFGuardError):
        return "address not allowed"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    causes = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, SSRFGuardError) for c in causes):
        return "address not allowed"
    if any(isinstance(c, ssl.SSLError | ssl.CertificateError) for c in causes):
        return "TLS error"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "host not found"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in str(exc):
        return "connection refused"
    if any(isinstance(c, TimeoutError) for c in causes):
        return "timed out"
    return "connection failed"


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
