"""`make bench`: every endpoint under load, against a bare Django view on the same server.

Creates a fresh database (drop + create) on the PostgreSQL server of DATABASE_URL (or
127.0.0.1:5432, user postgres), migrates, loads the data set, starts gunicorn with
production settings and drives each endpoint with wrk from a separate process.

Environment: BENCH_SECONDS (20: each endpoint's time under load, in BENCH_ROUNDS rounds, 4, that
every endpoint takes in turn), BENCH_CONNECTIONS (8), BENCH_THREADS (2), BENCH_USERS
(10000), BENCH_INVITEES (100000), BENCH_DATABASE (referrals_bench: dropped and created),
BENCH_SERVER_CPUS and BENCH_LOAD_CPUS (CPU lists as taskset takes them, "0" or "0,2-3": the
CPUs gunicorn and wrk may use; all of them when unset).
"""

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.load_data import test_phone

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = Path(__file__).resolve().parent / "request.lua"
GUNICORN_CONFIG = ROOT / "project" / "gunicorn.conf.py"
TEST_PHONES = 20
FIXED_CODE = "1234"
NEW_PHONES_PER_THREAD = 10**6  # bench/request.lua gives each wrk thread a block of numbers this big
NEW_PHONE_PREFIX = "+7999"  # + 7 digits: +7 999 is a Russian mobile range, as SMS_ALLOWED_REGIONS wants
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
REPORT_START, REPORT_END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Endpoint:
    name: str  # as bench.in_process names it, for bench.side_by_side's --only
    label: str
    method: str
    path: str
    token: str = "-"  # noqa: S105  ("-": no Authorization header)
    body: str = "-"
    phones: str = "-"


@dataclass(frozen=True)
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu_ms: tuple[float, float, float]  # per request: gunicorn, PostgreSQL (when local), wrk

    def cpu_line(self) -> str:
        server, database, load = (round(ms, 3) + 0.0 for ms in self.cpu_ms)  # + 0.0: no "-0.000"
        return f"{self.label}  cpu_ms_per_request: gunicorn={server:.3f} postgresql={database:.3f} wrk={load:.3f}"

    def line(self, ceiling_rps: float) -> str:
        ratio = self.rps / ceiling_rps if ceiling_rps else 0.0
        return (
            f"{self.label}  rps={self.rps:.0f}  p50_ms={self.p50_ms:.2f}  p99_ms={self.p99_ms:.2f}  ratio={ratio:.2f}"
        )


def setting(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def database_urls(name: str) -> tuple[str, str]:
    """(maintenance database URL, benchmark database URL) on the server of DATABASE_URL."""
    server = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    return server._replace(path="/postgres").geturl(), server._replace(path=f"/{name}").geturl()


def recreate_database(maintenance_url: str, name: str) -> str:
    import psycopg2

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"BENCH_DATABASE must be a plain lower-case name, not {name!r}")
    connection = psycopg2.connect(maintenance_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            cursor.execute(f"CREATE DATABASE {name}")
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def server_environment(database_url: str) -> dict[str, str]:
    phones = ",".join(f"{test_phone(i)}:{FIXED_CODE}" for i in range(TEST_PHONES))
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SMS_BACKEND": "console",
        "LOG_LEVEL": "WARNING",
        "OTP_TEST_PHONES": phones,
        # The load comes from one IP, so the per-IP limit is lifted; BENCH_AUTH_IP_RATE=1000000/second
        # keeps it counting (every request then reads and writes its counter) without refusing.
        "AUTH_IP_RATE": os.environ.get("BENCH_AUTH_IP_RATE", "off"),
        # Likewise the global hourly budget of sends: still counted on every send, never reached.
        "OTP_GLOBAL_SENDS_PER_HOUR": "1000000000",
        "ROOT_URLCONF": "bench.urls",
    }


def cpu_list(value: str) -> set[int] | None:
    """The CPUs of a list like "0,2-3", as taskset reads it; None for an empty value."""
    cpus: set[int] = set()
    for part in filter(None, (part.strip() for part in value.split(","))):
        first, _, last = part.partition("-")
        if not first.isdigit() or not (last or first).isdigit() or int(last or first) < int(first):
            raise SystemExit(f"not a CPU list: {value!r} (e.g. 0 or 0,2-3)")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus or None


def pinned_to(cpus: set[int] | None):
    """A preexec_fn that confines the child to `cpus` before it starts (gunicorn sizes itself then)."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


def worker_options() -> list[str]:
    return ["--config", str(GUNICORN_CONFIG)]  # the container's worker settings


def start_gunicorn(
    env: dict[str, str], log_path: Path, *, cpus: set[int] | None = None, root: Path = ROOT
) -> tuple[subprocess.Popen, str]:
    """Gunicorn serving the code in `root` (this checkout, or another commit's worktree), with this
    checkout's worker options."""
    # Gunicorn inherits an already listening socket on a free port: no race for the port.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    command = [sys.executable, "-m", "gunicorn", *worker_options(), "--bind", f"fd://{listener.fileno()}"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  (our own fixed command line)
            [*command, "project.wsgi:application"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
            preexec_fn=pinned_to(cpus),
        )
    listener.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            if call(base, "GET", "/healthz")[0] == 200:
                return server, base
        except OSError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"gunicorn did not answer /healthz:\n{log_path.read_text()}")


def call(base: str, method: str, path: str, *, token: str | None = None, body: dict | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (our own http://127.0.0.1)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def expect_ok(base: str, method: str, path: str, **kwargs) -> dict:
    status, payload = call(base, method, path, **kwargs)
    if status != 200:
        raise SystemExit(f"{method} {path} answered {status}: {payload}")
    return payload


def sign_in(base: str, phone: str) -> str:
    return expect_ok(base, "POST", "/api/v1/auth/token/", body={"phone": phone, "code": FIXED_CODE})["access"]


def deep_cursor(base: str, token: str, *, invitees: int) -> str:
    """A cursor halfway down the invitee list, reached by following `next` as a client would."""
    path = "/api/v1/me/invitees/?page_size=100"
    for _ in range(max(1, invitees // 2 // 100)):
        next_url = expect_ok(base, "GET", path, token=token)["next"]
        path = urlsplit(next_url)._replace(scheme="", netloc="").geturl()
    return parse_qs(urlsplit(path).query)["cursor"][0]


def endpoints(base: str, *, invitees: int) -> list[Endpoint]:
    inviter = sign_in(base, test_phone(0))
    retrying = sign_in(base, test_phone(1))  # has activated user 2's code: retrying it is idempotent
    own_code = expect_ok(base, "GET", "/api/v1/me/", token=inviter)["invite_code"]
    activated_code = expect_ok(base, "GET", "/api/v1/me/", token=retrying)["activated_invite_code"]
    cursor = deep_cursor(base, inviter, invitees=invitees)
    phones = ",".join(test_phone(i) for i in range(3, TEST_PHONES))
    return [
        Endpoint("ceiling", "GET /bench/ceiling/", "GET", "/bench/ceiling/"),
        Endpoint("me", "GET /api/v1/me/", "GET", "/api/v1/me/", token=inviter),
        Endpoint("invitees", "GET /api/v1/me/invitees/", "GET", "/api/v1/me/invitees/", token=inviter),
        Endpoint(
            "deep",
            "GET /api/v1/me/invitees/?cursor=deep",
            "GET",
            f"/api/v1/me/invitees/?cursor={cursor}",
            token=inviter,
        ),
        Endpoint(
            "code", "POST /api/v1/auth/code/", "POST", "/api/v1/auth/code/", body='{"phone": "{phone}"}', phones=phones
        ),
        # A phone that is not a test phone, new each time (one code a minute per phone): the whole
        # path of a real request; the console backend logs the SMS at INFO, below the run's LOG_LEVEL.
        Endpoint(
            "code-new-phone",
            "POST /api/v1/auth/code/ (new phone)",
            "POST",
            "/api/v1/auth/code/",
            body='{"phone": "{phone}"}',
            phones=f"new:{NEW_PHONE_PREFIX}",
        ),
        Endpoint(
            "token",
            "POST /api/v1/auth/token/",
            "POST",
            "/api/v1/auth/token/",
            body=f'{{"phone": "{{phone}}", "code": "{FIXED_CODE}"}}',
            phones=phones,
        ),
        Endpoint(
            "invite",
            "POST /api/v1/me/invite/",
            "POST",
            "/api/v1/me/invite/",
            token=retrying,
            body=json.dumps({"invite_code": activated_code}),
        ),
        Endpoint("invite-code", "GET /api/v1/invite-codes/{code}/", "GET", f"/api/v1/invite-codes/{own_code}/"),
        # A reference, not an endpoint of the API: DRF, the access-token check and one trivial query.
        Endpoint("floor", "GET /bench/floor/", "GET", "/bench/floor/", token=inviter),
    ]


def run_wrk(
    url: str, *, seconds: int, connections: int, threads: int, args: list[str], cpus: set[int] | None = None
) -> dict:
    """wrk's counts and latency percentiles for one endpoint, from request.lua's summary line."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA_SCRIPT), url]
    output = subprocess.run(  # noqa: S603
        [*command, "--", *args],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pinned_to(cpus),
    ).stdout
    match = re.search(r"^BENCH_RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{output}")
    return json.loads(match.group(1))


@dataclass
class Tally:
    """One endpoint's rounds, added up."""

    requests: int = 0
    new_phones: int = 0  # numbers each thread may have used so far: the next round starts past them
    duration_us: int = 0
    non2xx: int = 0
    socket_errors: int = 0
    # Each round's latency at every 0.1th percentile, with the round's requests as its weight.
    latency_us: list[tuple[int, int]] = field(default_factory=list)
    cpu_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def result(self, label: str) -> Result:
        requests = max(self.requests, 1)
        return Result(
            label=label,
            rps=self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0,
            p50_ms=percentile(self.latency_us, 50) / 1000,
            p99_ms=percentile(self.latency_us, 99) / 1000,
            non2xx=self.non2xx,
            socket_errors=self.socket_errors,
            cpu_ms=tuple(1000 * seconds / requests for seconds in self.cpu_seconds),
        )


def percentile(latency_us: list[tuple[int, int]], p: float) -> int:
    """The latency that `p` percent of the requests of all rounds took at most, from each round's quantiles.

    A round's 1,000 quantiles (the 0.1th to the 99.9th percentile as wrk takes them, and its
    slowest request) each stand for a thousandth of its requests: of one round, this is wrk's own
    percentile at every 0.1 percentile; of several, it is as close as that.
    """
    needed, seen = Fraction(str(p)) / 100 * sum(weight for _, weight in latency_us), 0
    for microseconds, weight in sorted(latency_us):
        seen += weight
        if seen >= needed:
            return microseconds
    return 0


def round_seconds(seconds: int, rounds: int) -> list[int]:
    """`seconds` split into `rounds` whole seconds, none of them 0: fewer rounds when too short."""
    rounds = max(1, min(rounds, seconds))
    return [seconds // rounds + (1 if index < seconds % rounds else 0) for index in range(rounds)]


def measure(
    base: str,
    endpoint: Endpoint,
    tally: Tally,
    *,
    seconds: int,
    connections: int,
    threads: int,
    server_pid: int,
    load_cpus: set[int] | None = None,
) -> None:
    """One round of `endpoint`, added to its tally; new phones continue past the previous rounds'."""
    args = [endpoint.method, endpoint.token, endpoint.body, endpoint.phones, str(tally.new_phones)]
    before = cpu_seconds(server_pid)
    raw = run_wrk(
        base + endpoint.path, seconds=seconds, connections=connections, threads=threads, args=args, cpus=load_cpus
    )
    spent = cpu_spent(before, cpu_seconds(server_pid))
    tally.requests += raw["requests"]
    tally.new_phones += raw["new_phones"]
    tally.duration_us += raw["duration_us"]
    tally.non2xx += raw["non2xx"]
    tally.socket_errors += raw["socket_errors"]
    tally.latency_us += [(microseconds, raw["requests"]) for microseconds in raw["latency_quantiles_us"]]
    tally.cpu_seconds = tuple(total + more for total, more in zip(tally.cpu_seconds, spent, strict=True))


def cpu_seconds(server_pid: int) -> dict[int | str, tuple[str, float]]:
    """CPU time used so far by each gunicorn process (master and workers), each PostgreSQL process
    on this machine (none for a remote server) and, under "wrk", all finished child processes."""
    used: dict[int | str, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if not entry.name.isdigit():
            continue
        try:
            head, _, tail = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue  # it ended meanwhile
        name, fields = head.partition("(")[2], tail.split()
        # Its own time and its ended children's: a PostgreSQL backend that closes (CONN_MAX_AGE)
        # moves into the postmaster's count, so a group's total never goes back.
        seconds = sum(int(field) for field in fields[11:15]) / tick  # utime stime cutime cstime
        if int(entry.name) == server_pid or int(fields[1]) == server_pid:
            used[int(entry.name)] = ("gunicorn", seconds)
        elif name == "postgres":
            used[int(entry.name)] = ("postgresql", seconds)
    children = os.times()
    used["wrk"] = ("wrk", children.children_user + children.children_system)
    return used


def worker_processes(server_pid: int) -> int:
    """How many workers the gunicorn master has."""
    return sum(1 for pid, (group, _) in cpu_seconds(server_pid).items() if group == "gunicorn" and pid != server_pid)


def cpu_spent(before: dict, after: dict) -> tuple[float, float, float]:
    """Seconds each group used between two cpu_seconds() readings."""
    spent = {"gunicorn": 0.0, "postgresql": 0.0, "wrk": 0.0}
    for reading, sign in ((after, 1), (before, -1)):
        for group, seconds in reading.values():
            spent[group] += sign * seconds
    return spent["gunicorn"], spent["postgresql"], spent["wrk"]


def machine(*, postgres_version: str, workers: str, data_set: str, load: str) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in read_lines("/proc/cpuinfo") if "model name" in line), "?")
    memory_kb = next((int(line.split()[1]) for line in read_lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {memory_kb / 1024 / 1024:.1f} GiB memory, {cpu}",
        f"- Python {platform.python_version()}, PostgreSQL {postgres_version}; server, database and wrk share it",
        f"- Gunicorn: {workers}",
        f"- Data set: {data_set}",
        f"- Load: {load}",
    ]


def read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def write_report(path: Path, description: list[str], lines: list[str]) -> None:
    block = "\n".join([REPORT_START, *description, "", "```", *lines, "```", REPORT_END])
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if REPORT_START not in text or REPORT_END not in text:
        text = text.rstrip("\n") + f"\n\n{REPORT_START}\n{REPORT_END}\n"
    start, end = text.find(REPORT_START), text.find(REPORT_END) + len(REPORT_END)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + block + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="write the table and the machine into this Markdown file")
    parser.add_argument("--cpu", action="store_true", help="also print each endpoint's CPU time per request")
    args = parser.parse_args()
    seconds = setting("BENCH_SECONDS", 20)
    durations = round_seconds(seconds, setting("BENCH_ROUNDS", 4))
    connections, threads = setting("BENCH_CONNECTIONS", 8), setting("BENCH_THREADS", 2)
    users, invitees = setting("BENCH_USERS", 10_000), setting("BENCH_INVITEES", 100_000)
    name = os.environ.get("BENCH_DATABASE") or "referrals_bench"
    server_cpus = cpu_list(os.environ.get("BENCH_SERVER_CPUS", ""))
    load_cpus = cpu_list(os.environ.get("BENCH_LOAD_CPUS", ""))

    maintenance_url, database_url = database_urls(name)
    postgres_version = recreate_database(maintenance_url, name)
    env = server_environment(database_url)
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput", "-v0"], ["createcachetable"]):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True)  # noqa: S603
    loader = ["--users", str(users), "--invitees", str(invitees), "--test-phones", str(TEST_PHONES)]
    subprocess.run([sys.executable, "-m", "bench.load_data", *loader], cwd=ROOT, env=env, check=True)  # noqa: S603

    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "gunicorn.log"
        server, base = start_gunicorn(env, log_path, cpus=server_cpus)
        try:
            measured = endpoints(base, invitees=invitees)
            tallies = [Tally() for _ in measured]
            # Endpoints take turns, round after round, so that a slower or faster spell of a shared
            # machine falls on all of them, the ceiling included, instead of on whichever ran then.
            for duration in durations:
                for endpoint, tally in zip(measured, tallies, strict=True):
                    measure(
                        base,
                        endpoint,
                        tally,
                        seconds=duration,
                        connections=connections,
                        threads=threads,
                        server_pid=server.pid,
                        load_cpus=load_cpus,
                    )
            results = [tally.result(endpoint.label) for endpoint, tally in zip(measured, tallies, strict=True)]
            worker_count = worker_processes(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        failures = [result for result in results if result.non2xx or result.socket_errors]
        if failures:
            print(log_path.read_text()[-4000:], file=sys.stderr)

    lines = [result.line(results[0].rps) for result in results]
    if args.cpu:
        lines += ["", *(result.cpu_line() for result in results)]
    print("\n".join(lines))
    for result in failures:
        print(f"FAILED {result.label}: {result.non2xx} non-2xx, {result.socket_errors} socket errors", file=sys.stderr)
    if args.report and failures:
        print(f"{args.report} left as it was: a run with failures is no measurement", file=sys.stderr)
    elif args.report:
        workers = f"--config {GUNICORN_CONFIG.relative_to(ROOT)}"
        # The count changes the figures more than most changes to the code (docs/benchmarks.md).
        threads_each = int(env.get("GUNICORN_THREADS") or 1)
        workers += (
            f": {worker_count} sync worker processes"
            if threads_each == 1
            else f": {worker_count} worker processes of {threads_each} threads each"
        )
        if server_cpus:
            workers += f", on CPUs {os.environ['BENCH_SERVER_CPUS']} only (BENCH_SERVER_CPUS)"
        data_set = (
            f"{users:,} users with referral rows and unique invite codes; one of them has {invitees:,} invitees "
            f"(extra users, distinct activated_at); {TEST_PHONES} test phones with fixed codes"
        )
        load = (
            f"wrk -t{threads} -c{connections}, {seconds} s per endpoint in {len(durations)} rounds"
            f" ({'+'.join(map(str, durations))} s), one endpoint at a time, taking turns"
        )
        if load_cpus:
            load += f", on CPUs {os.environ['BENCH_LOAD_CPUS']} only (BENCH_LOAD_CPUS)"
        counters = "Redis (REDIS_URL)" if env.get("REDIS_URL") else "the database cache table (no REDIS_URL)"
        if env["AUTH_IP_RATE"] == "off":
            load += "; per-IP limit lifted (AUTH_IP_RATE=off)"
        else:
            load += f"; per-IP limit {env['AUTH_IP_RATE']}, its counters in {counters}"
        load += f"; global hourly send budget {int(env['OTP_GLOBAL_SENDS_PER_HOUR']):,}"
        description = machine(postgres_version=postgres_version, workers=workers, data_set=data_set, load=load)
        write_report(args.report, description, lines)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
