"""Secrets out of the access log: uvicorn writes every request's path with its query string, and three kinds of
request carry a credential there: a marketplace link (``?session=``) and the provider's OAuth redirect to our
callback (``?code=`` and ``?state=``). Their values are replaced before any handler formats the line."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
SECRET_PARAMETERS = ("session", "code", "state")
REDACTED = "[redacted]"
_SECRET_VALUE = re.compile(r"([?&](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&#\s]*", re.IGNORECASE)


def redact_query(path: str) -> str:
    """``/marketplace?session=abc&q=x`` -> ``/marketplace?session=[redacted]&q=x``."""
    return _SECRET_VALUE.sub(lambda match: match.group(1) + REDACTED, path) if "?" in path else path


class RedactSecretParameters(logging.Filter):
    """Rewrites the path argument of uvicorn's access records (``'%s - "%s %s HTTP/%s" %d'``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


def install_access_log_redaction() -> None:
    """Attach the filter to uvicorn's access logger once per process. A logger's filters survive uvicorn's own
    logging setup (``dictConfig`` replaces handlers, not filters), so this may run before or after it."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecretParameters) for f in logger.filters):
        logger.addFilter(RedactSecretParameters())
