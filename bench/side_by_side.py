"""This checkout and another commit side by side, each under its own gunicorn: for changes within a run's noise.

Both servers run at once against the database the last `make bench` left (BENCH_DATABASE, on the
server of DATABASE_URL), with the settings and worker options of `make bench`, the other commit's
code from a temporary git worktree and the packages installed here. Each endpoint is driven against
one server and then the other with wrk, round after round, the order swapping every round, so that
a faster or slower spell of the shared machine falls on both alike. A full run compares endpoints
with the ceiling of the same moment; this compares the same endpoint before and after.

    .venv/bin/python -m bench.side_by_side HEAD~1 --only me,floor --rounds 6 --seconds 4
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import (
    NEW_PHONES_PER_THREAD,
    ROOT,
    Tally,
    database_urls,
    endpoints,
    measure,
    server_environment,
    setting,
    start_gunicorn,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the other side: any git revision (HEAD~1, a branch, a hash)")
    parser.add_argument(
        "--only", help="endpoints besides the ceiling, comma-separated, named as bench.in_process names them"
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=4, help="per endpoint, server and round")
    args = parser.parse_args()
    # The ceiling always runs: every ratio's reference.
    wanted = set(args.only.split(",")) | {"ceiling"} if args.only else None
    env = server_environment(database_urls(os.environ.get("BENCH_DATABASE") or "referrals_bench")[1])
    connections, threads = setting("BENCH_CONNECTIONS", 8), setting("BENCH_THREADS", 2)
    invitees = setting("BENCH_INVITEES", 100_000)
    # git with argument lists, no shell; the revision is resolved to a hash first, so that it can
    # never be read as an option.
    git = ["git", "-C", str(ROOT)]
    resolve = [*git, "rev-parse", "--verify", "--quiet", f"{args.commit}^{{commit}}"]
    commit = subprocess.run(resolve, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
    if not commit:
        parser.error(f"{args.commit!r} names no commit here")
    sides = {f"{args.commit} ({commit[:9]})": None, "this checkout": ROOT}

    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "other"
        subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(other), commit], check=True)  # noqa: S603
        servers = []
        try:
            for index, (side, root) in enumerate(sides.items()):
                server, base = start_gunicorn(env, Path(scratch) / f"gunicorn{index}.log", root=root or other)
                servers.append(server)
                served = endpoints(base, invitees=invitees)
                unknown = (wanted or set()) - {endpoint.name for endpoint in served}
                if unknown:  # known only once the endpoints are built; the finally below cleans up
                    known = ", ".join(endpoint.name for endpoint in served)
                    parser.error(f"unknown endpoints {sorted(unknown)}; known: {known}")
                measured = [endpoint for endpoint in served if wanted is None or endpoint.name in wanted]
                sides[side] = (server, base, measured, [Tally() for _ in measured])
            # New phones must be new to both servers (they share the database) and to the runs
            # before on it: a start unlike theirs, then each round past what either side used.
            start = random.randrange(NEW_PHONES_PER_THREAD // 2)  # noqa: S311 - not a secret
            for round_ in range(args.rounds):
                for server, base, measured, tallies in list(sides.values())[:: 1 if round_ % 2 == 0 else -1]:
                    for endpoint, tally in zip(measured, tallies, strict=True):
                        tally.new_phones = max(start, *(used[endpoint.name] for used in new_phones_used(sides)))
                        measure(
                            base,
                            endpoint,
                            tally,
                            seconds=args.seconds,
                            connections=connections,
                            threads=threads,
                            server_pid=server.pid,
                        )
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            subprocess.run([*git, "worktree", "remove", "--force", str(other)], check=False)  # noqa: S603

    failed = False
    for side, (_server, _base, measured, tallies) in sides.items():
        results = [tally.result(endpoint.label) for endpoint, tally in zip(measured, tallies, strict=True)]
        print(f"== {side}")
        print("\n".join(result.line(results[0].rps) for result in results))
        print("\n".join(result.cpu_line() for result in results))
        failed |= any(result.non2xx or result.socket_errors for result in results)
    if failed:
        print("some answers were not 2xx, or wrk saw socket errors: no comparison", file=sys.stderr)
    return 1 if failed else 0


def new_phones_used(sides: dict) -> list[dict[str, int]]:
    """For each side, the new phones each of its endpoints' threads may have used so far, by endpoint."""
    return [
        {endpoint.name: tally.new_phones for endpoint, tally in zip(measured, tallies, strict=True)}
        for _server, _base, measured, tallies in sides.values()
    ]


if __name__ == "__main__":
    sys.exit(main())
