"""Gunicorn settings, read from the environment (see .env.sample); used by bin/entrypoint."""

import os
import re

from gunicorn.glogging import Logger


# Read as the Django settings read theirs (project/environment.py): an empty value (`NAME=` in .env)
# means the default, and one that cannot be used stops start-up naming itself.
def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise SystemExit(f"{name}={number} is below its least value, {minimum}.")
    if maximum is not None and number > maximum:
        raise SystemExit(f"{name}={number} is above its greatest value, {maximum}.")
    return number


TRUE_WORDS = {"true", "on", "ok", "y", "yes", "1"}  # django-environ's, as DEBUG is read by the settings
FALSE_WORDS = {"false", "off", "no", "n", "0"}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise SystemExit(f"{name}={value!r} is not a boolean: use true or false (1/0, yes/no, on/off).")
    return value in TRUE_WORDS


host = os.environ.get("GUNICORN_HOST", "").strip() or "0.0.0.0"  # noqa: S104 - a container
if host.startswith("unix:"):
    bind = host  # a Unix socket, for a proxy on the same machine: no port
else:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address (`::`): gunicorn reads the last colon as the port's
    bind = f"{host}:{env_int('PORT', 8000, minimum=1, maximum=65535)}"
# Whether a request came over HTTPS is Django's to decide (BEHIND_HTTPS_PROXY): gunicorn would
# otherwise believe X-Forwarded-Proto from any peer on this machine or its Unix socket.
secure_scheme_headers: dict[str, str] = {}
# Requests are short database round trips: about two processes per core. Capped because a container
# sees every core of the host, and each worker holds a database connection (max_connections is 100).
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
workers = env_int("WEB_CONCURRENCY", min(2 * cores + 1, 12), minimum=1)  # with 0, gunicorn answers nobody
threads = env_int("GUNICORN_THREADS", 1, minimum=1)
timeout = env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Used by threaded workers only; behind a load balancer, raise it above the balancer's idle timeout.
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
max_requests = env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 0)

# Worker heartbeats go through a file; on a container's overlay filesystem that can stall workers.
if os.path.isdir("/dev/shm"):  # noqa: S108 - memory-backed, and only the heartbeat goes there
    worker_tmp_dir = "/dev/shm"  # noqa: S108
# Nothing here uses gunicornc, and its socket would land in $HOME (not writable for the container user,
# and shared by every gunicorn started by one user).
control_socket_disable = True

# Access and error logs both go to stdout, one line each, in the format Django logs in (LOG_FORMAT).
# Read as the settings read it (` info ` is INFO, empty is no level): gunicorn's logging would stop at
# any other with "Unable to configure logger", naming no variable.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
loglevel = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
if loglevel not in LOG_LEVELS:
    raise SystemExit(f"LOG_LEVEL={loglevel!r} is not one of {', '.join(LOG_LEVELS)}.")
# The path without its query string: an admin search (`?q=`) carries phone numbers and names, and logs are
# kept and shipped more widely than the database.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'


class AccessLogger(Logger):
    """Gunicorn's logger, with the path as the client sent it, without its query string or fragment:
    gunicorn's own `U` is decoded, so a `%0A` in a path would start a line of its own in a plain-text log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = re.split(r"[?#]", environ.get("RAW_URI") or environ.get("PATH_INFO", ""), maxsplit=1)[0]
        return atoms


logger_class = AccessLogger
_json = (
    os.environ.get("LOG_FORMAT", "").strip().lower() or ("plain" if env_bool("DEBUG", False) else "json")
) == "json"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _json else "line",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel, "propagate": False},
        "gunicorn.access": {
            "handlers": ["stdout"],
            "level": "INFO" if env_bool("GUNICORN_ACCESS_LOG", True) else "WARNING",
            "propagate": False,
        },
    },
}
