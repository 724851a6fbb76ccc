"""The environment variables of the IHC API settings, in a module of their own so the command line
can name them in its help without loading the client (see ``config`` for their meaning)."""

# config field -> environment variable
ENV_VARS = {
    "api_key": "IHC_API_KEY",
    "conv_type_id": "IHC_CONV_TYPE_ID",
    "api_url": "IHC_API_URL",
    "max_journeys": "IHC_MAX_JOURNEYS_PER_REQUEST",
    "max_sessions": "IHC_MAX_SESSIONS_PER_REQUEST",
    "redistribution_file": "IHC_REDISTRIBUTION_PARAMETER",
    "connect_timeout": "IHC_API_CONNECT_TIMEOUT",
    "read_timeout": "IHC_API_READ_TIMEOUT",
    "max_attempts": "IHC_API_MAX_ATTEMPTS",
    "backoff_base": "IHC_API_BACKOFF_BASE",
    "backoff_max": "IHC_API_BACKOFF_MAX",
    "max_retry_seconds": "IHC_API_MAX_RETRY_SECONDS",
}
