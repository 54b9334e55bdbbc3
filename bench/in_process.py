"""CPU time per request of each endpoint without gunicorn or wrk: for changes too small for `make bench`.

Django's WSGI handler is called directly, in this process, against the database a `make bench` run
left behind (BENCH_DATABASE, on the server of DATABASE_URL), with the settings that run gives
gunicorn. Endpoints take turns in rounds, so that whatever else the machine does in the meantime
falls on all of them alike; each line gives the median over the rounds of this process's CPU time
per request and of its PostgreSQL backend's (read from /proc: a local server only, in steps of the
kernel's clock tick, so use enough requests a round). "sign-in-new-phone" is a real sign-in, two
requests counted as one: a code sent to a new phone (the memory SMS backend keeps it), then checked.

    .venv/bin/python -m bench.in_process --requests 300 --rounds 7 --only me,deep

Compare two versions of the code by running this once for each, one after the other, twice or
more: a difference smaller than the spread between such runs is noise.
"""

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

from bench.load_data import test_phone
from bench.run import FIXED_CODE, NEW_PHONE_PREFIX, TEST_PHONES, database_urls, server_environment

Request = Callable[[], int]


def start_django(name: str):
    os.environ.update(server_environment(database_urls(name)[1]))
    # One connection for the whole run: its backend's CPU is the one read (and it keeps its prepared
    # statements, as a worker's connection does between requests).
    os.environ["CONN_MAX_AGE"] = str(24 * 3600)
    os.environ["SMS_BACKEND"] = "memory"  # where "sign-in" reads the codes it was sent
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def caller(app) -> Callable[..., tuple[int, bytes]]:
    def call(method: str, path: str, *, body: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": BytesIO(data),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        if body is not None:
            environ["CONTENT_TYPE"] = "application/json"
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        status = []
        response = app(environ, lambda line, headers, exc_info=None: status.append(int(line.split()[0])))
        content = b"".join(response)
        response.close()
        return status[0], content

    return call


def endpoints(call) -> dict[str, Request]:
    """The endpoints of `make bench`, with the same users, codes and deep cursor."""

    def ok(*args, **kwargs) -> dict:
        status, content = call(*args, **kwargs)
        if status != 200:
            raise SystemExit(f"{args} answered {status}: {content[:300]!r}")
        return json.loads(content)

    def sign_in(phone: str) -> str:
        return ok("POST", "/api/v1/auth/token/", body={"phone": phone, "code": FIXED_CODE})["access"]

    inviter, retrying = sign_in(test_phone(0)), sign_in(test_phone(1))
    own_code = ok("GET", "/api/v1/me/", token=inviter)["invite_code"]
    activated_code = ok("GET", "/api/v1/me/", token=retrying)["activated_invite_code"]
    path = "/api/v1/me/invitees/?page_size=100"
    for _ in range(max(1, ok("GET", "/api/v1/me/", token=inviter)["invitees_count"] // 2 // 100)):
        path = urlsplit(ok("GET", path, token=inviter)["next"])._replace(scheme="", netloc="").geturl()
    deep = f"/api/v1/me/invitees/?cursor={parse_qs(urlsplit(path).query)['cursor'][0]}"
    phones = itertools.cycle([test_phone(i) for i in range(3, TEST_PHONES)])
    first = random.randrange(10**7)  # noqa: S311 - a start unlike the last run's, not a secret
    new_phones = (f"{NEW_PHONE_PREFIX}{number % 10**7:07d}" for number in itertools.count(first))

    def status(*args, **kwargs) -> Request:
        return lambda: call(*args, **kwargs)[0]

    def sign_in_new_phone() -> int:
        from accounts.sms_backends import outbox

        phone = next(new_phones)
        sent = call("POST", "/api/v1/auth/code/", body={"phone": phone})[0]
        code = outbox.pop()["text"].rsplit(" ", 1)[1] if sent == 200 else "0000"
        return max(sent, call("POST", "/api/v1/auth/token/", body={"phone": phone, "code": code})[0])

    return {
        "ceiling": status("GET", "/bench/ceiling/"),
        "me": status("GET", "/api/v1/me/", token=inviter),
        "invitees": status("GET", "/api/v1/me/invitees/", token=inviter),
        "deep": status("GET", deep, token=inviter),
        "code": lambda: call("POST", "/api/v1/auth/code/", body={"phone": next(phones)})[0],
        "code-new-phone": lambda: call("POST", "/api/v1/auth/code/", body={"phone": next(new_phones)})[0],
        "token": lambda: call("POST", "/api/v1/auth/token/", body={"phone": next(phones), "code": FIXED_CODE})[0],
        # A real sign-in: a code sent to a new phone, then checked; the account is created.
        "sign-in-new-phone": sign_in_new_phone,
        "invite": status("POST", "/api/v1/me/invite/", body={"invite_code": activated_code}, token=retrying),
        "invite-code": status("GET", f"/api/v1/invite-codes/{own_code}/"),
        "floor": status("GET", "/bench/floor/", token=inviter),
    }


def backend_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, after the name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", help="endpoints to measure, comma-separated (default: all)")
    args = parser.parse_args()
    call = caller(start_django(os.environ.get("BENCH_DATABASE") or "referrals_bench"))
    measured = endpoints(call)
    if args.only:
        wanted = set(args.only.split(","))
        if wanted - set(measured):
            parser.error(f"unknown endpoints {sorted(wanted - set(measured))}; known: {', '.join(measured)}")
        measured = {name: request for name, request in measured.items() if name in wanted}

    from django.db import connection

    connection.ensure_connection()
    backend = connection.connection.get_backend_pid()
    for name, request in measured.items():  # warm-up: connections, prepared statements, caches
        for _ in range(50):
            if request() >= 300:
                raise SystemExit(f"{name} failed during the warm-up")
    worker: dict[str, list[float]] = {name: [] for name in measured}
    database: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.rounds):
        for name, request in measured.items():
            database_before, before = backend_cpu_seconds(backend), time.process_time()
            failed = sum(request() >= 300 for _ in range(args.requests))
            spent, database_spent = time.process_time() - before, backend_cpu_seconds(backend) - database_before
            if failed:
                raise SystemExit(f"{name}: {failed} of {args.requests} requests failed")
            if connection.connection.get_backend_pid() != backend:
                raise SystemExit("the database connection was replaced: its PostgreSQL CPU was not all counted")
            worker[name].append(spent / args.requests * 1000)
            database[name].append(database_spent / args.requests * 1000)
    for name in measured:
        print(
            f"{name:18s} worker_ms={statistics.median(worker[name]):.3f}"
            f"  postgresql_ms={statistics.median(database[name]):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
