"""The container's start-up, run natively: bin/entrypoint and gunicorn with production settings."""

import contextlib
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import requests
from django.conf import settings
from django.db import connection

from accounts.models import User

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+79110000042"


PROBES = ("/healthz", "/readyz")


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production deployment, minus HTTPS (tests speak plain HTTP to 127.0.0.1)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEBUG": "0",
        "SECRET_KEY": "entrypoint-test-secret-key-5f2c9a7e1b3d8f6a0c4e2b9d7f1a3c5e",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SMS_BACKEND": "console",
        "LOG_FORMAT": "json",
        "WEB_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the entrypoint and wsgi.py choose it, as in the container
    env.update(overrides)
    return env


def listening_socket() -> socket.socket:
    """A socket on a free port, handed to gunicorn as fd://N so no other process can take the port meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def serve(command: list[str], env: dict[str, str], sock: socket.socket) -> subprocess.Popen:
    """`command` serving on `sock` (GUNICORN_CMD_ARGS in `env` names it), in a session of its own."""
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=[sock.fileno()],
        start_new_session=True,
    )  # fmt: skip
    sock.close()  # gunicorn has its own copy now
    return server


def wait_until_up(base: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail(f"{base}/healthz did not answer within {seconds} s")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def database_url_of(settings_dict) -> str:
    user = quote(settings_dict["USER"] or "", safe="")
    password = quote(settings_dict["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entrypoint_migrates_and_serves_with_production_settings(tmp_path):
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    log = tmp_path / "stdout.log"
    env = production_env(
        DATABASE_URL=database_url_of(connection.settings_dict),
        GUNICORN_CMD_ARGS=f"--bind fd://{sock.fileno()}",
    )
    with log.open("wb") as stdout:
        server = subprocess.Popen(
            [str(ROOT / "bin" / "entrypoint")],
            cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()],
            start_new_session=True,
        )  # fmt: skip
    sock.close()  # gunicorn has its own copy now
    try:
        wait_until_up(base, server)
        ready = requests.get(f"{base}/readyz", params={"phone": PHONE}, timeout=10)
        requests.get(f"{base}/nothere%0Aforged", timeout=10)
        code = requests.post(f"{base}/api/v1/auth/code/", json={"phone": PHONE}, timeout=10)
        unknown_host = requests.get(f"{base}/api/v1/invite-codes/ABCDEF/", headers={"Host": "evil.example"}, timeout=10)
        # Orchestrators and load balancers probe by the target's address, which ALLOWED_HOSTS does not name.
        probes = [requests.get(f"{base}{path}", headers={"Host": "10.0.0.5:8000"}, timeout=10) for path in PROBES]
    finally:
        stop(server)

    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})
    assert code.status_code == 200, code.text
    assert code.json()["phone"] == PHONE
    assert unknown_host.status_code == 400  # DEBUG is off: ALLOWED_HOSTS is enforced
    assert [(probe.status_code, probe.json()["status"]) for probe in probes] == [(200, "ok"), (200, "ok")]
    output = log.read_text()
    # One JSON object a line, the migrations' report included, for log collectors that expect it.
    records = [json.loads(line) for line in output.splitlines()]
    assert any(r["name"] == "entrypoint" and "No migrations to apply" in r["message"] for r in records), output
    # The system checks' warnings are log lines too: the console backend with DEBUG off.
    (warning,) = [r["message"] for r in records if r["levelname"] == "WARNING" and "accounts.W001" in r["message"]]
    assert warning.startswith("accounts.W001 SMS_BACKEND=console") and warning.count("smsaero or exolve") == 1
    assert "\n" not in warning
    assert any(r["name"] == "accounts.sms_backends" and PHONE in r["message"] for r in records), output
    assert any(r["name"] == "gunicorn.access" and '"GET /readyz HTTP/1.1" 200' in r["message"] for r in records), output
    assert not any(r["name"] == "gunicorn.access" and PHONE.lstrip("+") in r["message"] for r in records), output
    # The path as sent, escapes and all: decoded, a line break in it would forge a line of a plain-text log.
    forged = '"GET /nothere%0Aforged HTTP/1.1" 404'
    assert any(r["name"] == "gunicorn.access" and forged in r["message"] for r in records), output
    assert server.returncode == 0


def test_entrypoint_gives_up_on_an_unreachable_database():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"postgres://postgres@127.0.0.1:{closed.getsockname()[1]}/referrals"
        started = time.monotonic()
        result = subprocess.run(
            [str(ROOT / "bin" / "entrypoint")],
            cwd=ROOT, env=production_env(DATABASE_URL=url, DB_WAIT_SECONDS="2"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    assert result.returncode != 0
    assert "database is still unreachable" in result.stderr
    assert time.monotonic() - started < 30


def can_be_pid_1() -> bool:
    """Whether this machine lets the tests start a PID namespace (root, or a container that allows it)."""
    try:
        return (
            subprocess.run(["unshare", "-fp", "--mount-proc", "true"], capture_output=True, check=False).returncode == 0
        )
    except FileNotFoundError:
        return False


def _default_signal_actions() -> None:
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)


def start_until(command: list[str], env: dict[str, str], log: Path, line: str) -> subprocess.Popen:
    """`command` in a session of its own, once its stdout (into `log`) has a line containing `line`.

    It starts with the signals' default actions, as a container's PID 1 does. A suite started as a
    background job of a script (`.ci/run &`) ignores SIGINT, every child inherits that, and bash can
    trap no signal ignored when it started: its INT trap would be a silent no-op.
    """
    with log.open("wb") as stdout:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_default_signal_actions,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while line not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"no line {line!r} in the output: {log.read_text()}")
        time.sleep(0.1)
    return process


def _session_has_processes(session: int) -> bool:
    try:
        os.killpg(session, 0)
    except ProcessLookupError:
        return False
    return True


def stopped_within(process: subprocess.Popen, pid: int, signum: int, seconds: float = 5) -> int:
    """`process`'s exit status once `pid` (the entrypoint's bash) has `signum`; a failure naming what
    each process of its session was doing (state, kernel wait) if it lingers."""
    os.kill(pid, signum)
    try:
        status = process.wait(timeout=seconds)
        deadline = time.monotonic() + 2
        while _session_has_processes(process.pid):  # bash went: nothing of its own may stay behind
            if time.monotonic() > deadline:
                pytest.fail("the entrypoint exited and left its preparation running")
            time.sleep(0.05)
        return status
    except subprocess.TimeoutExpired:
        session = subprocess.run(
            ["ps", "-ww", "-s", str(process.pid), "-o", "pid,ppid,stat,wchan:32,etime,args"],
            capture_output=True,
            text=True,
        ).stdout
        pytest.fail(f"still running {seconds} s after {signal.Signals(signum).name}:\n{session}")
    finally:
        # Whatever is left of its session, such as a Python still waiting after bash has gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def entrypoint_pid(process: subprocess.Popen, as_pid_1: bool) -> int:
    """The entrypoint's bash: `process` itself, or the one child of `unshare`, PID 1 of its namespace."""
    if not as_pid_1:
        return process.pid
    (child,) = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return int(child)


@pytest.mark.parametrize(
    ("signum", "status", "as_pid_1"),
    [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)],
    ids=["TERM as PID 1", "INT as PID 1", "TERM"],
)
def test_a_signal_stops_the_wait_for_the_database(tmp_path, signum, status, as_pid_1):
    # docker stop, Kubernetes: PID 1 has no default action for SIGTERM, and bash ignored it while Python
    # waited; run as a child (compose's init), bash went but left Python waiting.
    if as_pid_1 and not can_be_pid_1():
        pytest.skip("no PID namespace here (unshare needs root)")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"postgres://postgres@127.0.0.1:{closed.getsockname()[1]}/referrals"
        command = [str(ROOT / "bin" / "entrypoint"), "true"]
        process = start_until(
            ["unshare", "-fp", "--mount-proc", *command] if as_pid_1 else command,
            production_env(DATABASE_URL=url, DB_WAIT_SECONDS="120"), tmp_path / "stdout.log",
            "waiting for the database",
        )  # fmt: skip

        assert stopped_within(process, entrypoint_pid(process, as_pid_1), signum) == status


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_signal_stops_the_wait_for_another_replica_s_migrations(tmp_path):
    if not can_be_pid_1():
        pytest.skip("no PID namespace here (unshare needs root)")
    with connection.cursor() as cursor:  # another replica, migrating: the entrypoint's own lock
        cursor.execute("SELECT pg_advisory_lock(hashtext('referrals: entrypoint migrations'))")
    try:
        process = start_until(
            ["unshare", "-fp", "--mount-proc", str(ROOT / "bin" / "entrypoint"), "true"],
            production_env(DATABASE_URL=database_url_of(connection.settings_dict)), tmp_path / "stdout.log",
            "waiting for another replica's migrations",
        )  # fmt: skip

        assert stopped_within(process, entrypoint_pid(process, as_pid_1=True), signal.SIGTERM) == 143
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.postgres
@pytest.mark.django_db
def test_entrypoint_says_why_it_waits_for_the_database():
    # A wrong database name or password waits like a server that is still starting: the log must say which.
    url = database_url_of({**connection.settings_dict, "NAME": "no_such_database_here"})
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"],
        cwd=ROOT, env=production_env(DATABASE_URL=url, DB_WAIT_SECONDS="1"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    waits = [json.loads(line)["message"] for line in result.stdout.splitlines()]
    assert waits and all('database "no_such_database_here" does not exist' in wait for wait in waits), waits
    assert result.stderr.strip().splitlines()[-1].endswith('database "no_such_database_here" does not exist')


def test_entrypoint_warns_of_a_redis_that_does_not_answer(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/11"
        result = subprocess.run(
            [str(ROOT / "bin" / "entrypoint"), "true"],
            cwd=ROOT, env=production_env(REDIS_URL=url, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    assert result.returncode == 0, result.stderr  # it may come up later: the start goes on
    records = [json.loads(line) for line in result.stdout.splitlines()]
    (warning,) = [r["message"] for r in records if "REDIS_URL" in r["message"]]
    assert warning.startswith("REDIS_URL does not answer (ConnectionError): the limited endpoints answer 503")
    # Not a line of Django's CacheKeyWarning (a probe key with spaces) either: stderr is for what stops the start.
    assert result.stderr == ""


@pytest.mark.parametrize("wait", ["a minute", "nan", "inf", "-5"])
def test_entrypoint_names_a_wait_that_is_not_a_number_of_seconds(tmp_path, wait):
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"],
        cwd=ROOT, env=production_env(DB_WAIT_SECONDS=wait, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"entrypoint: DB_WAIT_SECONDS={wait!r} is not a number of seconds"


@pytest.mark.parametrize(
    "name", ["PORT", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"]
)  # WEB_CONCURRENCY: gunicorn reads it first
def test_gunicorn_names_a_setting_that_is_not_a_number(name):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py", "--check-config", "project.wsgi"],
        cwd=ROOT, env=production_env(**{name: "abc"}), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert f"{name}='abc' is not a whole number." in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY=0 is below its least value, 1."),  # no worker would answer
        ("GUNICORN_THREADS", "0", "GUNICORN_THREADS=0 is below its least value, 1."),
        ("PORT", "-1", "PORT=-1 is below its least value, 1."),
        ("PORT", "70000", "PORT=70000 is above its greatest value, 65535."),
        ("GUNICORN_ACCESS_LOG", "ture", "GUNICORN_ACCESS_LOG='ture' is not a boolean"),
    ],
)
def test_gunicorn_names_a_setting_it_cannot_use(name, value, message):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py", "--check-config", "project.wsgi"],
        cwd=ROOT, env=production_env(**{name: value}), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize("level", ["loud", "", "warn"])
def test_gunicorn_names_a_log_level_it_cannot_use(level):
    # Run without the entrypoint (as the benchmark does), gunicorn would otherwise fail in the settings' traceback.
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py", "--check-config", "project.wsgi"],
        cwd=ROOT, env=production_env(LOG_LEVEL=level), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert (result.stdout + result.stderr).strip() == (
        f"LOG_LEVEL={level.upper()!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )


def test_entrypoint_runs_without_a_worker_count(tmp_path):
    # Unset is the usual case (the sample leaves it commented out); the script runs under `set -u`.
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    del env["WEB_CONCURRENCY"]

    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_entrypoint_names_a_worker_count_that_is_not_a_number(tmp_path):
    # gunicorn reads WEB_CONCURRENCY itself before its settings file, and gave a traceback.
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint")],
        cwd=ROOT, env=production_env(WEB_CONCURRENCY="two", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["entrypoint: WEB_CONCURRENCY='two' is not a whole number."]


def test_entrypoint_will_not_serve_without_allowed_hosts(tmp_path):
    # The probes answer before the Host check: such a service would look healthy and refuse everyone.
    env = production_env(ALLOWED_HOSTS="", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("entrypoint: project.E001 ALLOWED_HOSTS is empty")


NOT_FOR_SERVING = {
    "dev key": "SECRET_KEY is unset or the development key, which is public: set your own",
    "sample key": "SECRET_KEY is the placeholder of .env.sample, which is public: set your own",
    "debug": "DEBUG is on, which is for development only (error pages show code and settings): set DEBUG=0",
}


@pytest.mark.parametrize(
    ("environment", "refusals"),
    [
        ({"DEBUG": "1", "SECRET_KEY": None}, ["dev key", "debug"]),  # DEBUG=1 alone let the settings take it
        ({"DEBUG": "1", "SECRET_KEY": settings.SAMPLE_SECRET_KEY}, ["sample key", "debug"]),
        ({"DEBUG": "yes"}, ["debug"]),
    ],
)
def test_entrypoint_will_not_serve_with_a_public_key_or_debug_on(tmp_path, environment, refusals):
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", GUNICORN_HOST=f"unix:{tmp_path / 'gunicorn.sock'}",
        **{name: value for name, value in environment.items() if value is not None},
    )  # fmt: skip
    for name in [name for name, value in environment.items() if value is None]:
        del env[name]
    # In a session of its own: one that serves after all is stopped here, workers and all.
    server = subprocess.Popen(
        [str(ROOT / "bin" / "entrypoint")], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.communicate()
        pytest.fail("the entrypoint served")

    assert server.returncode != 0
    assert stderr.strip().splitlines() == [
        "entrypoint: will not serve: " + "; ".join(NOT_FOR_SERVING[refusal] for refusal in refusals) + "."
    ]
    assert "Applying" not in stdout  # refused before it touches the database


def test_a_one_off_command_runs_with_debug_on(tmp_path):
    # Only serving is refused: a command such as createsuperuser signs nothing anyone receives.
    env = production_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    del env["SECRET_KEY"]
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "setting",
    [
        {"WEB_CONCURRENCY": " "},  # empty means the default
        {"LOG_LEVEL": " info "},  # as the settings read it; gunicorn's logging stopped at it
    ],
)
def test_entrypoint_serves_with_a_blank_or_spaced_setting(tmp_path, setting):
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = production_env(
        **setting, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", GUNICORN_CMD_ARGS=f"--bind fd://{sock.fileno()}"
    )
    server = serve([str(ROOT / "bin" / "entrypoint")], env, sock)
    try:
        wait_until_up(base, server)
    finally:
        stop(server)

    assert server.returncode == 0


@pytest.mark.parametrize(
    ("environment", "bind", "json_logs"),
    [
        ({"GUNICORN_HOST": "::", "PORT": ""}, "[::]:8000", True),
        ({"GUNICORN_HOST": " 127.0.0.1 ", "PORT": "8001", "LOG_FORMAT": " JSON"}, "127.0.0.1:8001", True),
        ({"LOG_FORMAT": "Plain"}, "0.0.0.0:8000", False),
        ({"GUNICORN_HOST": "unix:/run/app/gunicorn.sock", "PORT": "8001"}, "unix:/run/app/gunicorn.sock", True),
    ],
)
def test_gunicorn_reads_its_settings_as_django_does(environment, bind, json_logs):
    shown = (
        "import runpy; c = runpy.run_path('project/gunicorn.conf.py'); "
        "print(c['bind'], c['logconfig_dict']['handlers']['stdout']['formatter'])"
    )

    result = subprocess.run(
        [sys.executable, "-c", shown], cwd=ROOT, env=production_env(**environment),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    assert result.stdout.split() == [bind, "json" if json_logs else "line"]


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_health_check_reads_an_empty_port_as_the_default():
    try:
        server = http.server.HTTPServer(("127.0.0.1", 8000), _Healthy)
    except OSError:
        pytest.skip("port 8000 is taken here")
    with server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = subprocess.run(
            [str(ROOT / "bin" / "healthcheck"), "/healthz"],
            cwd=ROOT, env=production_env(PORT=""), capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        server.shutdown()

    assert (result.returncode, result.stderr) == (0, "")


def test_over_a_unix_socket_a_forwarded_https_header_is_not_believed(tmp_path):
    # Only BEHIND_HTTPS_PROXY makes Django trust X-Forwarded-Proto; gunicorn trusted it from any socket peer.
    path = tmp_path / "gunicorn.sock"
    env = production_env(
        GUNICORN_HOST=f"unix:{path}", SECURE_SSL_REDIRECT="1", WEB_CONCURRENCY="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py", "project.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1")
        connection.sock = socket.socket(socket.AF_UNIX)
        connection.sock.connect(str(path))
        connection.request(
            "GET", "/api/v1/invite-codes/ABCDEF/", headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}
        )
        status = connection.getresponse().status
    finally:
        stop(server)

    assert status == 301  # plain HTTP, redirected


def test_a_migration_that_fails_is_named_in_the_log(tmp_path):
    database = tmp_path / "db.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE referrals_referral (x int)")  # in the way of referrals' first migration

    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"],
        cwd=ROOT, env=production_env(DATABASE_URL=f"sqlite:///{database}"), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"levelname": "ERROR", "name": "entrypoint", "message": "Applying referrals.0001_initial..."}.items() <= (
        records[-1].items()
    ), records[-3:]


def test_the_health_check_asks_over_gunicorn_s_unix_socket(tmp_path):
    class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    path = tmp_path / "gunicorn.sock"
    with UnixHTTPServer(str(path), _Healthy) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = subprocess.run(
            [str(ROOT / "bin" / "healthcheck"), "/healthz"],
            cwd=ROOT, env=production_env(GUNICORN_HOST=f"unix:{path}"), capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        server.shutdown()

    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_BACKEND", "smsaero"),  # system checks
        ("PHONE_REGION", "XX"),
        ("SMS_TIMEOUT", "10s"),  # the settings themselves
        ("SECRET_KEY", "too-short"),
        ("SECURE_SSL_REDIRECT", "ture"),
    ],
)
def test_entrypoint_runs_the_system_checks_before_anything_starts(tmp_path, name, value):
    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "true"],
        cwd=ROOT, env=production_env(**{name: value}, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, for log collectors
    assert "Applying" not in result.stdout


def test_database_outage_gives_json_503_not_500():
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        env = production_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed.getsockname()[1]}/referrals",
            GUNICORN_CMD_ARGS=f"--bind fd://{sock.fileno()}",
            WEB_CONCURRENCY="1",
        )
        server = serve([sys.executable, "-m", "gunicorn", "-c", "project/gunicorn.conf.py", "project.wsgi"], env, sock)
        try:
            wait_until_up(base, server)
            ready_ru = requests.get(f"{base}/readyz", headers={"Accept-Language": "ru"}, timeout=10)
            ready = requests.get(f"{base}/readyz", timeout=10)
            code = requests.post(f"{base}/api/v1/auth/code/", json={"phone": PHONE}, timeout=10)
        finally:
            stop(server)

    assert ready.status_code == 503
    # The probe's own fields, and the envelope every other error body has.
    assert ready.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "code": "service_unavailable",
        "detail": "The service is temporarily unavailable.",
    }
    assert ready.headers["Retry-After"] == "5"
    # Asked in Russian, in Russian and as UTF-8; the one worker's next reply is English again.
    assert ready_ru.json()["detail"] == "Сервис временно недоступен."
    assert "Сервис".encode() in ready_ru.content
    assert code.status_code == 503, code.text
    assert code.headers["Content-Type"] == "application/json"
    assert code.json()["code"] == "service_unavailable"
    assert set(code.json()) == {"code", "detail"}
    assert code.headers["Retry-After"] == "5"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entrypoint_runs_a_one_off_command_such_as_creating_the_first_admin():
    env = production_env(
        DATABASE_URL=database_url_of(connection.settings_dict),
        DJANGO_SUPERUSER_PHONE="+7 911 000-00-07",
        DJANGO_SUPERUSER_PASSWORD="correct-horse-battery-staple",
    )

    result = subprocess.run(
        [str(ROOT / "bin" / "entrypoint"), "python", "manage.py", "createsuperuser", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    admin = User.objects.get(phone="+79110000007")
    assert admin.is_superuser and admin.check_password("correct-horse-battery-staple")


@pytest.fixture
def empty_database():
    """A database of its own on the test server, with nothing in it, dropped afterwards."""
    # Named after the suite's own database (test_<DATABASE_URL's name>), so runs on one server do not meet.
    name = f"{connection.settings_dict['NAME'].removeprefix('test_')}_empty_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    yield {**connection.settings_dict, "NAME": name}
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def connect_to(settings_dict) -> psycopg2.extensions.connection:
    return psycopg2.connect(
        dbname=settings_dict["NAME"], user=settings_dict["USER"], host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432, password=settings_dict["PASSWORD"] or None,
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_replicas_starting_together_migrate_one_at_a_time(empty_database):
    env = production_env(DATABASE_URL=database_url_of(empty_database))
    replicas = [
        subprocess.Popen(
            [str(ROOT / "bin" / "entrypoint"), "true"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [replica.communicate(timeout=180)[0].decode() for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0, 0], outputs
    with connect_to(empty_database) as migrated, migrated.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations GROUP BY app, name HAVING count(*) > 1")
        assert cursor.fetchall() == []
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'referrals'")
        assert cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_migration_kept_waiting_for_a_lock_lets_the_queries_behind_it_through(empty_database):
    env = production_env(DATABASE_URL=database_url_of(empty_database))
    migrate_to = [sys.executable, "manage.py", "migrate", "accounts", "0006"]  # what is left alters the users table
    subprocess.run(migrate_to, cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
    blocker, reader, watcher = (connect_to(empty_database) for _ in range(3))
    reader.autocommit = watcher.autocommit = True
    with blocker.cursor() as cursor:  # a transaction left open after reading the table: a pg_dump, a shell
        cursor.execute("SELECT count(*) FROM accounts_user")
    migrating = subprocess.Popen(
        [str(ROOT / "bin" / "entrypoint"), "true"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        with watcher.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the migration never waited for the lock")
        with reader.cursor() as cursor:  # queued behind the migration's ALTER: it must give way, not wait on
            cursor.execute("SET statement_timeout = '30s'")
            cursor.execute("SELECT count(*) FROM accounts_user")
    finally:
        blocker.rollback()
        output = migrating.communicate(timeout=120)[0]
        for session in (blocker, reader, watcher):
            session.close()

    assert migrating.returncode == 0, output
    warnings = [json.loads(line) for line in output.splitlines() if '"WARNING"' in line]
    assert any("lock" in warning["message"] for warning in warnings), output
