"""Gunicorn settings, read from the environment (see .env.sample); used by bin/entrypoint."""

import multiprocessing
import os


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return default if value == "" else value.strip().lower() in {"1", "true", "yes", "on"}


bind = f"{os.environ.get('GUNICORN_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - a container
# Requests are mostly short database round trips: a few processes per core, threads optional.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Longer than a load balancer's idle timeout, so the proxy closes idle connections first.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# The request line and headers a client may send: gunicorn's defaults, made explicit.
limit_request_line = 4094
limit_request_fields = 100

# Worker heartbeats go through a file; on a container's overlay filesystem that can stall workers.
if os.path.isdir("/dev/shm"):  # noqa: S108 - memory-backed, and only the heartbeat goes there
    worker_tmp_dir = "/dev/shm"  # noqa: S108
# Nothing here uses gunicornc, and its socket would land in $HOME (not writable for the container user,
# and shared by every gunicorn started by one user).
control_socket_disable = True

# Access and error logs both go to stdout, one line each, in the format Django logs in (LOG_FORMAT).
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
_json = os.environ.get("LOG_FORMAT", "plain" if env_bool("DEBUG", False) else "json") == "json"
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
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {
            "handlers": ["stdout"],
            "level": "INFO" if env_bool("GUNICORN_ACCESS_LOG", True) else "WARNING",
            "propagate": False,
        },
    },
}
