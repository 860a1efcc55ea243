"""Debian's Prometheus tools for the tests of ``deploy/prometheus``: where they are, the rule
files, and a real ``prometheus`` server on a free port with its own storage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import _process, _wait_until_ready, free_port

ROOT = Path(__file__).parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = [PROMETHEUS_DIR / "recording_rules.yml", PROMETHEUS_DIR / "alerts.yml"]
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))


def tool(name: str) -> Path:
    """The path of ``promtool`` or ``prometheus``; skips the test (with the reason) without it."""
    # Debian puts them in /usr/bin, which a trimmed PATH may lack.
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/bin")
    if found is None:
        pytest.skip(f"no {name} on PATH: `make test` installs Debian's prometheus package")
    return Path(found)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``promtool`` with ``args`` (never raises on its exit code: the caller asserts)."""
    command = [str(tool("promtool")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    """Every alert rule of ``alerts.yml``."""
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    """Every recording rule of ``recording_rules.yml``."""
    groups = load_yaml(PROMETHEUS_DIR / "recording_rules.yml")["groups"]
    return [rule for group in groups for rule in group["rules"] if "record" in rule]


def scrape_config(targets: dict[str, str], interval: str = "1s") -> dict[str, Any]:
    """The project's ``prometheus.yml`` pointed at ``targets`` (job name -> host:port) and at
    the rule files by absolute path, scraping and evaluating every ``interval``; no
    Alertmanager (nothing would receive the alerts)."""
    config: dict[str, Any] = load_yaml(CONFIG)
    config["global"].update(scrape_interval=interval, scrape_timeout=interval,
                            evaluation_interval=interval)  # fmt: skip
    config["rule_files"] = [str(path) for path in RULE_FILES]
    config.pop("alerting", None)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, target in targets.items():
        jobs[name]["static_configs"][0]["targets"] = [target]
    config["scrape_configs"] = [jobs[name] for name in targets]
    return config


@contextmanager
def prometheus_server(config: dict[str, Any], folder: Path) -> Iterator[str]:
    """A real Prometheus with ``config``, storage under ``folder``, on a free loopback port;
    yields its address once it is ready."""
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        str(tool("prometheus")),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Debian's build looks for its console files under /etc; none are needed here.
        f"--web.console.templates={folder}",
        f"--web.console.libraries={folder}",
        # Its output goes to a pipe nobody reads until it exits: keep it to a few lines.
        "--log.level=warn",
    ]
    with _process(command, dict(os.environ)) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, f"{url}/-/ready")
        yield url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector (or scalar, as one sample) ``promql`` evaluates to now."""
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    body = answer.json()
    assert body["status"] == "success", (promql, answer.status_code, body)
    data = body["data"]
    if data["resultType"] in {"scalar", "string"}:
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


# ---------------------------------------------------------------- Grafana panels' PromQL

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel of a committed dashboard."""

    dashboard: str
    panel: str
    expr: str

    def concrete(self, job: str = ".+", rate_interval: str = "1m") -> str:
        """The query as Grafana sends it: its variables replaced (``$job`` by a regex of the
        jobs, Grafana's ``$__rate_interval`` by a range)."""
        return self.expr.replace("$__rate_interval", rate_interval).replace("$job", job)


def panel_queries() -> list[PanelQuery]:
    """Every query of every panel (rows included) of every committed dashboard."""
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                found.append(PanelQuery(board["title"], panel["title"], target["expr"]))
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))
