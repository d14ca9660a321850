"""Per-credential rate limit of the logs API, counted in Redis (Django's cache)."""

import logging

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from accounts.authentication import Credentials

logger = logging.getLogger(__name__)


class CredentialRateThrottle(SimpleRateThrottle):
    """LOGS_API_THROTTLE_RATE requests per credential (an API key, or an environment's
    client secret), shared by every process through the cache. A 429 carries Retry-After."""

    scope = "logs"

    @property
    def cache(self):
        return caches[settings.LOGS_API_THROTTLE_CACHE]

    def get_rate(self) -> str:
        return settings.LOGS_API_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        credentials = request.auth
        if not isinstance(credentials, Credentials):
            return None  # unauthenticated requests never get this far
        if credentials.api_key is not None:
            ident = f"key:{credentials.api_key.pk}"
        else:
            ident = f"env:{credentials.environment.pk}"
        return f"throttle:logs:{ident}"

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache (Redis) is down: serve rather than fail
            logger.warning("logs API throttle skipped: the cache is unavailable (%s)", exc)
            return True
