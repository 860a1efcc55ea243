"""``deploy/prometheus`` checked by Debian's ``promtool``: the config and rule files are valid,
the rule unit tests (synthetic series, expected alerts) pass, every alert is covered by them
firing and not firing, and a broken rule makes them fail."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.prometheus_tools import (
    CONFIG,
    PROMETHEUS_DIR,
    ROOT,
    RULE_FILES,
    RULE_TESTS,
    alert_rules,
    load_yaml,
    promtool,
    recording_rules,
)

RUNBOOK = ROOT / "docs" / "runbook.md"
ANNOTATIONS = {"summary", "description", "runbook", "runbook_url"}


def test_config_is_valid() -> None:
    done = promtool("check", "config", CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout


def test_rule_files_are_valid() -> None:
    done = promtool("check", "rules", *RULE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no *_test.yml under deploy/prometheus/tests"
    done = promtool("test", "rules", *RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = [case for path in RULE_TESTS for test in load_yaml(path)["tests"]
             for case in test.get("alert_rule_test", [])]  # fmt: skip
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_recording_rule_is_tested_or_read_by_an_alert() -> None:
    tested = " ".join(
        str(case["expr"])
        for path in RULE_TESTS
        for test in load_yaml(path)["tests"]
        for case in test.get("promql_expr_test", [])
    )
    alerts = " ".join(rule["expr"] for rule in alert_rules())
    untested = [r["record"] for r in recording_rules() if r["record"] not in tested + alerts]
    assert untested == []


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_says_what_to_do(rule: dict[str, Any]) -> None:
    """Each alert has a severity, the four annotations, and a runbook section of its name."""
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert set(rule["annotations"]) == ANNOTATIONS
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{anchor}"
    headings = re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings


def test_a_broken_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    """The harness catches a regression: a copy whose latency SLO is 10x looser fails."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    alerts = copy / "alerts.yml"
    text = alerts.read_text()
    assert "> 0.020" in text
    alerts.write_text(text.replace("> 0.020", "> 0.200"))
    done = promtool("test", "rules", *sorted((copy / "tests").glob("*_test.yml")))
    assert done.returncode != 0
    assert "MovierecRecommendationLatencyHigh" in done.stdout + done.stderr
