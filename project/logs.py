"""Logging filters named by settings.LOGGING."""

import logging


class RefusalsAsOneLine(logging.Filter):
    """A request Django refused as suspicious (an unknown Host, a bad cookie) as one WARNING line.

    Django logs each at ERROR with its traceback; scanners on a public address send many, and a
    log of tracebacks for what was no fault of the service hides the real errors. The message
    (which names the Host) is kept.
    """

    # On the handler: a logger's filters see only what is logged to it, and Django logs to one child
    # of django.security per kind (django.security.DisallowedHost, ...).
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("django.security."):
            return True
        if record.levelno > logging.WARNING:
            if logging.getLogger(record.name).getEffectiveLevel() > logging.WARNING:
                return False  # LOG_LEVEL=ERROR: as a WARNING it would not have been written
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
