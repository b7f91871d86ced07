"""The dashboard benchmark (run by scripts/bench-dashboard, not by pytest): see
docs/benchmarks.md "Dashboard" for what each figure means."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.ui.conftest import Server  # noqa: E402
from tests.ui.fixtures import all_passed, finished, running  # noqa: E402


def timed_get(url: str, n: int) -> float:
    """Median wall time of `n` GETs of `url` on localhost, in ms (after one warm-up)."""
    requests.get(url, timeout=30).raise_for_status()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        requests.get(url, timeout=30).raise_for_status()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fill(server: Server, runs: list[tuple[str, str, int | None]]) -> None:
    status = finished("Succeeded", all_passed())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: server.run(r[0], r[1], status, pr=r[2]), runs))


def follow_latency(server: Server, run: str, samples: int) -> list[float]:
    """Seconds from appending a line to receiving its event on the run's live log."""
    got: dict[str, float] = {}
    url = f"{server.url}/runs/{run}/events/install?offset=0"
    resp = requests.get(url, stream=True, timeout=60)

    def read() -> None:
        try:
            for raw in resp.iter_lines(decode_unicode=True):
                if raw and raw.startswith("data:"):
                    for word in raw.split():
                        if word.startswith("mark-"):
                            got[word] = time.perf_counter()
        except (AttributeError, requests.RequestException):
            return  # the stream was closed under the reader: the measurement is over

    threading.Thread(target=read, daemon=True).start()
    time.sleep(1)
    sent: dict[str, float] = {}
    for i in range(samples):
        mark = f"mark-{i}"
        sent[mark] = time.perf_counter()
        server.append_log(run, "install", [mark])
        time.sleep(0.05 + (i % 7) * 0.013)
    time.sleep(1.5)
    resp.close()
    return [got[m] - sent[m] for m in sent if m in got] + [9.9] * (samples - len(got))


def main() -> int:
    ok = True

    def report(what: str, value: float, unit: str, goal: float) -> None:
        nonlocal ok
        passed = value <= goal
        ok &= passed
        print(
            f"{what}: {value:.1f} {unit} (goal <= {goal:g} {unit}) {'PASS' if passed else 'FAIL'}"
        )

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "pages")
        server.start()
        try:
            recipes = [f"recipe-{i:03d}" for i in range(200)]
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(server.recipe, recipes))
            # 50 runs per recipe: 2 on the default branch, 48 over 24 PRs (retention keeps them).
            runs = [
                (f"{r}-{j:02d}", r, None if j < 2 else j // 2) for r in recipes for j in range(50)
            ]
            fill(server, runs)
            server.run("recipe-000-live", "recipe-000", running(), pr=99)
            path = server.log_path("recipe-000-live", "install")
            with open(path, "w") as f:
                for i in range(100_000):
                    f.write(f"2026-12-02T10:00:00.000Z step {i} \x1b[33mwaiting\x1b[0m\n")
            time.sleep(1)
            count = len(requests.get(server.url + "/api/v1/testruns", timeout=60).json()["items"])
            print(f"records: {len(recipes)} recipes, {count} runs")
            report(
                "overview, 200 recipes / 10,000 runs, median of 20",
                timed_get(server.url + "/", 20),
                "ms",
                50,
            )
            report(
                "run page with a 100,000-line log, median of 20",
                timed_get(server.url + "/runs/recipe-000-live", 20),
                "ms",
                100,
            )
            lat = sorted(follow_latency(server, "recipe-000-live", 100))
            p99 = lat[int(len(lat) * 0.99) - 1] * 1000
            median, worst = statistics.median(lat) * 1000, lat[-1] * 1000
            print(f"log-follow latency: median {median:.0f} ms, max {worst:.0f} ms")
            report("log-follow latency p99 (100 lines)", p99, "ms", 500)
        finally:
            server.stop()

        # Memory: 10,000 finished runs of one recipe and PR (the control-plane benchmark's
        # history), retention at its defaults; idle RSS of a fresh start after it pruned.
        server = Server(Path(tmp) / "memory")
        server.start()
        try:
            server.recipe("custom-html")
            fill(server, [(f"custom-html-{i:05d}", "custom-html", 42) for i in range(10_000)])
            server.stop()
            start = time.monotonic()
            server.start()
            while (
                len(requests.get(server.url + "/api/v1/testruns", timeout=60).json()["items"]) > 25
            ):
                time.sleep(0.5)
            left = len(requests.get(server.url + "/api/v1/testruns", timeout=60).json()["items"])
            print(f"retention pruned to {left} runs in {time.monotonic() - start:.1f} s")
            server.stop()
            server.start()
            time.sleep(3)
            assert server.proc is not None
            report(
                "idle RSS after 10,000 finished runs, retention defaults (3 s after ready)",
                rss_mb(server.proc.pid),
                "MB",
                40,
            )
        finally:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("CCCI_BIN", "target/release/cc-ci")
    sys.exit(main())
