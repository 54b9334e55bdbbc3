"""`make bench` keeps working: a small data set, two seconds per endpoint, every answer 2xx."""

import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.run import run_wrk

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
    assert all(line in text for line in done.stdout.splitlines())


class RedirectEverything(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(301)
        self.send_header("Location", "https://127.0.0.1/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@needs_wrk
def test_the_wrk_script_counts_redirects_as_failures():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RedirectEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        result = run_wrk(url, seconds=1, connections=2, threads=1, args=["GET", "-", "-", "-"])
    finally:
        server.shutdown()
        server.server_close()

    assert result["requests"] > 0
    assert result["non2xx"] == result["requests"]
