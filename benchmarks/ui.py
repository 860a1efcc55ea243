"""How fast the UI answers a person, in a real headless Chromium (Debian's ``chromium``).

What users get: ``movierec up`` (the API and the UI, as ``make run`` starts them) serving the
champion of the project's own pipeline (``params.yaml`` on ml-latest-small, or the champion
already in ``--data-dir``). Measured, ``--runs`` times each (20 by default):

1. **First cards**: a fresh browser session opens For you by deep link (``/?user=ID``, a
   random user each time) until the first recommendation card is visible. Target p95 <= 2 s.
2. **An interaction**: on For you, the "How many" filter is moved (10 <-> 15 movies) until the
   updated cards are shown and the run is over. Target p95 <= 1 s.

Baseline, same run: the API's own answer to the same request (``httpx``, no browser), so the
ratio says what the UI adds on top of the API.

    python benchmarks/ui.py --datasets-dir ../shared/datasets [--data-dir DIR] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from common import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
CARD = '[data-testid="mr-card"]'
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--data-dir", type=Path, help="A data dir with a champion already.")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="movierec-ui-bench-"))
    env = {
        **os.environ,
        "MOVIEREC_DATA_DIR": str(data_dir),
        "MOVIEREC_DATASETS_DIR": str(args.datasets_dir),
    }
    if args.data_dir is None:
        print("training the champion: movierec pipeline run --config params.yaml ...")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "movierec.cli", "pipeline", "run", "--config",
             str(ROOT / "params.yaml")],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"  done in {time.perf_counter() - started:.0f} s")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {args.runs} runs each")
    with stack(env) as (api_url, ui_url):
        champion = httpx.get(f"{api_url}/models/current").json()
        print(f"serving {champion['name']} v{champion['version']} (movierec up)")
        users = [u["user_id"] for u in httpx.get(f"{api_url}/users?limit=500").json()["items"]]
        rng = random.Random(args.seed)
        chosen = [rng.choice(users) for _ in range(args.runs)]
        api_ms = [api_answer_ms(api_url, user) for user in chosen]
        first, interaction = browser_timings(ui_url, chosen)
    report("API answer (baseline)", api_ms)
    report("first cards, deep link", first, target=2000, baseline=api_ms)
    report("interaction (filter)", interaction, target=1000, baseline=api_ms)


@contextmanager
def stack(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``movierec up`` on free ports until the block ends; yields both addresses when ready."""
    api_port, ui_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "up", "--port", str(api_port), "--ui-port",
         str(ui_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    try:
        for url in (f"{api}/ready", f"{ui}/_stcore/health"):
            wait_for(url, process)
        yield api, ui
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: both servers stop
        process.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"movierec up exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 180 s")


def api_answer_ms(api_url: str, user: int) -> float:
    started = time.perf_counter()
    httpx.get(f"{api_url}/users/{user}/recommendations", params={"k": 10}).raise_for_status()
    return (time.perf_counter() - started) * 1000


def browser_timings(ui_url: str, users: list[int]) -> tuple[list[float], list[float]]:
    first: list[float] = []
    interaction: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        warm = browser.new_page()  # Streamlit's first session compiles nothing twice
        warm.goto(f"{ui_url}/?user={users[0]}")
        warm.wait_for_selector(CARD)
        warm.close()
        for user in users:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            started = time.perf_counter()
            page.goto(f"{ui_url}/?user={user}")
            page.wait_for_selector(CARD, state="visible", timeout=30_000)
            first.append((time.perf_counter() - started) * 1000)
            page.wait_for_selector(DONE)
            interaction.append(move_filter(page))
            context.close()
        browser.close()
    return first, interaction


def move_filter(page: Page) -> float:
    """Move "How many" from 10 to 15 movies with the keyboard; milliseconds until shown."""
    page.locator('.st-key-for_you_k input[type="range"]').focus()
    started = time.perf_counter()
    page.keyboard.press("ArrowRight")  # one step of 5
    page.wait_for_function(f"document.querySelectorAll('{CARD}').length === 15", timeout=30_000)
    page.wait_for_selector(DONE)
    return (time.perf_counter() - started) * 1000


def report(
    name: str, ms: list[float], target: float | None = None, baseline: list[float] | None = None
) -> None:
    p50 = statistics.median(ms)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18]
    line = f"{name:28s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
    if baseline is not None:
        line += f"  ({p50 / statistics.median(baseline):.0f}x the API's p50)"
    if target is not None:
        line += f"  target p95 <= {target:.0f} ms: {'PASS' if p95 <= target else 'FAIL'}"
    print(line)


if __name__ == "__main__":
    main()
