"""Per-credential rate limit of the logs API: an atomic counter in Redis (config.throttling)."""

from config.throttling import CounterRateThrottle


class CredentialRateThrottle(CounterRateThrottle):
    """LOGS_API_THROTTLE_RATE requests per credential (an API key, or an environment's
    client secret), shared by every process through Redis. A 429 carries Retry-After."""

    scope = "logs"
    setting = "LOGS_API_THROTTLE_RATE"
    what = "the logs API"
