"""How fast the dashboard (`exp ui`) is on a 100,000-experiment ledger, measured in Chromium.

Builds the ledger of bench_ledger.py (100,000 experiments, three lifecycle lines each), adds
one run with a 1,000,000-point step series, starts a real `exp ui`, and measures:
  - the first page of the table in a fresh headless Chromium (no cache): from navigation
    start to the frame that shows the rows (a performance mark app.js sets after that
    frame was painted), median of --repeat runs;
  - the API's list call for 50 rows once warm (plain, filtered, and a --where with a sort):
    median and 95th percentile over 50 calls each, and the CPU the server spent on each (its
    Server-Timing header), which a machine busy with other work does not inflate;
  - the page of the run with 1,000,000 points: navigation start to the painted chart
    (downsampled on the server), and the steps call alone, downsampled and full.

    python benchmarks/bench_ui.py [--experiments 100000] [--points 1000000] [--repeat 5] [--workdir DIR]

With --workdir the ledger is built there once and reused by later runs.

Needs the ui extra, playwright and Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_ledger import build_ledger

CHROMIUM = "/usr/bin/chromium"


def add_long_run(ledger: Path, points: int) -> str:
    """One SUCCESS run with a `points`-point loss series, written in 100,000-point flushes."""
    from expledger.models import Status
    from expledger.store import open_store

    with open_store(str(ledger)) as store:
        exp = store.add(name="a million steps", task="asr", model="whisper-base", params={"lr": 1e-3})
        for start in range(0, points, 100_000):
            steps = list(range(start, min(points, start + 100_000)))
            store.append_steps(exp, {"loss": (steps, [1.0 / (1 + s / 1000) for s in steps])})
        store.result(exp.id, status=Status.SUCCESS, metrics={"loss": 1.0 / (1 + points / 1000)})
        return exp.id


def page_ms(browser, url: str, mark: str, repeat: int) -> list[float]:
    """Navigation start to `mark` (set by app.js after the frame was painted), fresh context each time."""
    times = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(url, wait_until="commit")
        deadline = time.monotonic() + 60
        found = None
        while found is None:
            found = page.evaluate(f"(performance.getEntriesByName({json.dumps(mark)})[0] || {{}}).startTime ?? null")
            if time.monotonic() > deadline:
                raise SystemExit(f"{url}: no {mark} after 60 s")
            if found is None:
                page.wait_for_timeout(20)
        times.append(found)
        context.close()
    return times


def api_ms(client, path: str, count: int) -> tuple[list[float], list[float]]:
    """Wall-clock milliseconds per call, and the server's CPU milliseconds (its Server-Timing)."""
    for _ in range(min(5, count)):  # warm: the index, the store's thread, the connection
        client.get(path).raise_for_status()
    times, cpu = [], []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        cpu.append(float(response.headers["server-timing"].split("cpu;dur=")[1]))
    return times, cpu


def fmt(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   (n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="Build the ledger here once and reuse it (default: a temp folder).")
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
            run(args, Path(tmp))


def run(args, tmp: Path) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    ledger = tmp / "memory" / "experiments" / "experiments.jsonl"
    marker = tmp / "long-run-id"
    if not marker.exists():
        began = time.perf_counter()
        build_ledger(ledger, args.experiments)
        marker.write_text(add_long_run(ledger, args.points))  # the first open also builds the index
        print(f"built and indexed in {time.perf_counter() - began:.1f} s")
    long_id = marker.read_text()
    print(f"ledger: {args.experiments:,} experiments + {long_id} with {args.points:,} points "
          f"({ledger.stat().st_size / 1e6:.0f} MB)")
    floor = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append((time.perf_counter() - began) * 1000)
    print(f"machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"`python -c pass` {statistics.median(floor):.0f} ms (19 ms on this machine when quiet)")
    server = subprocess.Popen([sys.executable, "-m", "expledger", "ui", "--port", "0", "--json", "--store", str(ledger)],
                              cwd=tmp, stdout=subprocess.PIPE, text=True, env={**os.environ, "EXP_UI_TOKEN": ""})
    try:
        base = json.loads(server.stdout.readline())["url"].rstrip("/")
        with httpx.Client(base_url=base, timeout=120) as client:
            for label, path, count in [
                ("list, newest 50", "/api/experiments?limit=50", 50),
                ("list, status=success task=asr, 50", "/api/experiments?limit=50&status=success&task=asr", 50),
                ("list, page 1,000 (offset 49,950)", "/api/experiments?limit=50&offset=49950", 10),
                ("list, --where lr<0.001 and acc>0.9, sort -acc, 50",
                 ("/api/experiments?limit=50&where=params.lr%20%3C%200.001%20and%20metrics.accuracy%20%3E%200.9"
                  "&sort=-metrics.accuracy"), 10),
                ("status counts (quick filters)", "/api/counts", 20),
                (f"show {long_id} (its page's record, with step summaries)", f"/api/experiments/{long_id}", 10),
                (f"steps of {long_id}, downsampled", f"/api/experiments/{long_id}/steps", 10),
                (f"steps of {long_id}, all {args.points:,} points", f"/api/experiments/{long_id}/steps?full=1", 3),
            ]:
                wall, cpu = api_ms(client, path, count)
                print(f"API {label:56s} {fmt(wall)}   server CPU median {statistics.median(cpu):6.1f} ms", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page_ms(browser, base + "/", "exp:table-painted", 1)  # Chromium's own first start
            table = page_ms(browser, base + "/", "exp:table-painted", args.repeat)
            print(f"page: table, first 50 of {args.experiments:,}, painted  {fmt(table)}")
            chart = page_ms(browser, f"{base}/exp/{long_id}", "exp:chart-painted", args.repeat)
            print(f"page: {long_id} with a {args.points:,}-point chart, painted  {fmt(chart)}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
