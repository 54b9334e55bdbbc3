"""`make bench` keeps working: a small data set, two seconds per endpoint, every answer 2xx."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.run import cpu_list, percentile, round_seconds, run_wrk, server_environment, start_gunicorn

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(GET|POST) (.+?)  rps=(\d+)  p50_ms=(\d+\.\d\d)  p99_ms=(\d+\.\d\d)  ratio=(\d+\.\d\d)$")
CPU_LINE = re.compile(r"^(.+)  cpu_ms_per_request: gunicorn=(\d+\.\d+) postgresql=(\d+\.\d+) wrk=(\d+\.\d+)$")
LABELS = [
    "GET /bench/ceiling/",
    "GET /api/v1/me/",
    "GET /api/v1/me/invitees/",
    "GET /api/v1/me/invitees/?cursor=deep",
    "POST /api/v1/auth/code/",
    "POST /api/v1/auth/code/ (new phone)",
    "POST /api/v1/auth/token/",
    "POST /api/v1/me/invite/",
    "GET /api/v1/invite-codes/{code}/",
    "GET /bench/floor/",
]

IN_PROCESS_LINE = re.compile(r"^(\S+) +worker_ms=(\d+\.\d{3})  postgresql_ms=(\d+\.\d{3})$")
IN_PROCESS_NAMES = [
    "ceiling",
    "me",
    "invitees",
    "deep",
    "code",
    "code-new-phone",
    "token",
    "sign-in-new-phone",
    "invite",
    "invite-code",
    "floor",
]

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)")


@pytest.fixture
def bench_database():
    import psycopg2

    server = urlsplit(os.environ["DATABASE_URL"])
    name = f"{server.path.lstrip('/')}_smoke"
    yield name
    connection = psycopg2.connect(server._replace(path="/postgres").geturl())
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    connection.close()


@needs_wrk
@pytest.mark.postgres
def test_benchmark_prints_a_line_per_endpoint_and_every_answer_is_2xx(bench_database, tmp_path):
    report = tmp_path / "benchmarks.md"
    env = {
        **os.environ,
        "BENCH_DATABASE": bench_database,
        "BENCH_USERS": "200",
        "BENCH_INVITEES": "1000",
        "BENCH_SECONDS": "2",
        "WEB_CONCURRENCY": "2",
    }
    command = [sys.executable, "-m", "bench.run", "--report", str(report), "--cpu"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    # run.py exits non-zero when wrk saw any non-2xx answer or socket error.
    assert done.returncode == 0, done.stdout + done.stderr
    rates, _, cpu = done.stdout.partition("\n\n")
    lines = [LINE.match(line) for line in rates.splitlines()]
    assert all(lines), done.stdout
    assert [f"{m[1]} {m[2]}" for m in lines] == LABELS
    assert all(int(m[3]) > 0 for m in lines), done.stdout
    assert lines[0][6] == "1.00"  # the ceiling is its own reference
    cpu_lines = [CPU_LINE.match(line) for line in cpu.splitlines()]
    assert all(cpu_lines) and [m[1] for m in cpu_lines] == LABELS, done.stdout
    assert all(float(m[2]) > 0 and float(m[4]) > 0 for m in cpu_lines), done.stdout  # gunicorn and wrk worked
    assert float(cpu_lines[1][3]) > 0, done.stdout  # the profile ran on the local PostgreSQL
    text = report.read_text()
    assert "PostgreSQL" in text
    assert "- Gunicorn: --config project/gunicorn.conf.py: 2 sync worker processes" in text  # counted as it ran
    assert all(line in text for line in done.stdout.splitlines())

    # The in-process measurement, on the database the run left.
    command = [sys.executable, "-m", "bench.in_process", "--requests", "3", "--rounds", "2"]
    in_process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert in_process.returncode == 0, in_process.stdout + in_process.stderr
    measured = [IN_PROCESS_LINE.match(line) for line in in_process.stdout.splitlines()]
    assert all(measured), in_process.stdout
    assert [m[1] for m in measured] == IN_PROCESS_NAMES
    assert all(float(m[2]) > 0 for m in measured), in_process.stdout

    # This checkout against a commit (itself here), each under its own gunicorn, on the same database.
    worktrees = ["git", "worktree", "list"]
    before = subprocess.run(worktrees, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    command = [sys.executable, "-m", "bench.side_by_side", "HEAD", "--only", "me", "--rounds", "2", "--seconds", "1"]
    side_by_side = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert side_by_side.returncode == 0, side_by_side.stdout + side_by_side.stderr
    sides = side_by_side.stdout.split("== ")[1:]
    assert [side.splitlines()[0].split(" (")[0] for side in sides] == ["HEAD", "this checkout"], side_by_side.stdout
    for side in sides:
        rates = [LINE.match(line) for line in side.splitlines()[1:3]]
        assert all(rates) and [f"{m[1]} {m[2]}" for m in rates] == LABELS[:2], side_by_side.stdout
        assert all(int(m[3]) > 0 for m in rates), side_by_side.stdout
        assert all(CPU_LINE.match(line) for line in side.splitlines()[3:5]), side_by_side.stdout
    after = subprocess.run(worktrees, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert after == before  # the other side's worktree is gone


def test_side_by_side_refuses_a_revision_that_names_no_commit():
    command = [sys.executable, "-m", "bench.side_by_side", "--only", "me", "no-such-revision"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert "'no-such-revision' names no commit here" in done.stderr


@needs_wrk
@pytest.mark.postgres
def test_a_run_with_failures_fails_and_leaves_the_report_alone(bench_database, tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("the last good run\n")
    env = {
        **os.environ,
        "BENCH_DATABASE": bench_database,
        "BENCH_USERS": "50",
        "BENCH_INVITEES": "200",
        "BENCH_SECONDS": "1",
        "BENCH_AUTH_IP_RATE": "5/minute",  # enough for the set-up's sign-ins, not for the load
    }
    command = [sys.executable, "-m", "bench.run", "--report", str(report)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED POST /api/v1/auth/code/" in done.stderr
    assert report.read_text() == "the last good run\n"


class QuietHandler(BaseHTTPRequestHandler):
    def answer(self, status: int, **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": "0"}.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args):
        pass


class RedirectEverything(QuietHandler):
    def do_GET(self):
        self.answer(301, Location="https://127.0.0.1/")


class RecordPhones(QuietHandler):
    phones: list[str] = []

    def do_POST(self):
        self.phones.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["phone"])
        self.answer(200)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@needs_wrk
def test_the_wrk_script_counts_redirects_as_failures():
    with serving(RedirectEverything) as url:
        result = run_wrk(url, seconds=1, connections=2, threads=1, args=["GET", "-", "-", "-"])

    assert result["requests"] > 0
    assert result["non2xx"] == result["requests"]
    quantiles = result["latency_quantiles_us"]
    assert len(quantiles) == 1000 and quantiles == sorted(quantiles) and quantiles[0] > 0


@needs_wrk
def test_new_phones_never_repeat_across_the_rounds_of_a_run():
    first = 0
    with serving(RecordPhones) as url:
        for _ in range(3):
            args = ["POST", "-", '{"phone": "{phone}"}', "new:+7999", str(first)]
            first += run_wrk(url, seconds=1, connections=4, threads=2, args=args)["new_phones"]

    phones = RecordPhones.phones
    assert len(phones) > 100
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"\+7999\d{7}", phone) for phone in phones)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one of them")
def test_the_server_can_be_pinned_to_cpus_and_sizes_itself_to_them(tmp_path):
    cpu = min(os.sched_getaffinity(0))
    env = server_environment("sqlite:///" + str(tmp_path / "pinned.sqlite3"))
    server, _ = start_gunicorn(env, tmp_path / "gunicorn.log", cpus={cpu})
    try:
        deadline = time.monotonic() + 20
        while len(workers := gunicorn_workers(server.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first worker answered; the others may still be starting
        assert os.sched_getaffinity(server.pid) == {cpu}
        assert [os.sched_getaffinity(pid) for pid in workers] == [{cpu}] * len(workers)
        assert len(workers) == 3  # the container's rule, 2 x CPUs + 1, for the one CPU it may use
    finally:
        server.terminate()
        server.wait(timeout=30)


def gunicorn_workers(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def test_cpu_lists_are_read_like_taskset():
    assert cpu_list("0") == {0}
    assert cpu_list("0,2-3") == {0, 2, 3}
    assert cpu_list("") is None
    for wrong in ("first", "3-1", "0,-1"):
        with pytest.raises(SystemExit):
            cpu_list(wrong)


def test_each_endpoint_s_seconds_are_split_into_whole_rounds():
    assert round_seconds(20, 4) == [5, 5, 5, 5]
    assert round_seconds(10, 4) == [3, 3, 2, 2]
    assert round_seconds(2, 4) == [1, 1]  # no round of 0 seconds: wrk would not run
    assert round_seconds(7, 1) == [7]


def test_percentiles_of_the_merged_rounds_weigh_each_round_by_its_requests():
    quick = [(100 + tenth // 10, 300) for tenth in range(1, 1001)]  # 300 requests: 100 to 200 us
    slow = [(5000, 100)] * 1000  # 100 requests, all 5 ms

    assert percentile(quick, 50) == 150  # one round alone: its own quantile
    assert percentile(quick, 99) == 199
    assert percentile(quick + slow, 50) == 166  # the 200th of 400 requests: two thirds into the quick round
    assert percentile(quick + slow, 75) == 200
    assert percentile(quick + slow, 76) == 5000
    assert percentile([], 50) == 0
