"""``deploy/grafana``: the committed dashboards are what ``dashboards.py`` generates, load into
the Grafana Foundation SDK's dashboard type unchanged, are laid out and wired to the
provisioned Prometheus, and every panel's PromQL parses (``promtool check rules`` on a rule
file made of them). tests/deploy/test_prometheus_live.py evaluates them against real data."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.deploy.prometheus_tools import (
    DASHBOARDS,
    ROOT,
    panel_queries,
    promtool,
    recording_rules,
)

GRAFANA_DIR = ROOT / "deploy" / "grafana"
EXPECTED = {"api", "recommendations", "data", "training"}


def load_generator() -> ModuleType:
    """deploy/grafana/dashboards.py, imported from its file (deploy/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", GRAFANA_DIR / "dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def board(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_committed_dashboards_are_generated() -> None:
    generated = load_generator().rendered()
    assert {path.stem for path in generated} == EXPECTED
    assert sorted(generated) == DASHBOARDS
    for path, text in generated.items():
        assert path.read_text() == text, (
            f"{path.name} is stale: run python {GRAFANA_DIR}/dashboards.py"
        )


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()
    monkeypatch.setattr(generator, "OUT", tmp_path)
    assert generator.main(["--check"]) == 1  # nothing written there yet
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    (tmp_path / "api.json").write_text("{}")
    assert generator.main(["--check"]) == 1


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_round_trips_through_the_sdk_types(path: Path) -> None:
    """Every field is one the SDK's Dashboard model knows, with the type it expects."""
    data = board(path)
    again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    assert again == data


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_layout_and_wiring(path: Path) -> None:
    data = board(path)
    panels = data["panels"]
    assert data["uid"] == f"movierec-{path.stem}"
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    assert {v["name"] for v in data["templating"]["list"]} == {"datasource", "job"}
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert sorted(set(refs)) == sorted(refs) != [], panel["title"]
        assert all('job=~"$job"' in target["expr"] for target in panel["targets"]), panel["title"]


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool parses each panel's PromQL, its Grafana variables filled in."""
    queries = panel_queries()
    assert len(queries) >= 30
    rules = [
        {"record": f"panel:query_{n}:check", "expr": q.concrete()} for n, q in enumerate(queries)
    ]
    rule_file = tmp_path / "panels.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = promtool("check", "rules", rule_file)
    assert done.returncode == 0, done.stdout + done.stderr


def test_panels_read_only_existing_recording_rules() -> None:
    recorded = {rule["record"] for rule in recording_rules()}
    for query in panel_queries():
        for name in {
            word for word in query.expr.replace("(", " ").split() if word.startswith("movierec:")
        }:
            assert name.split("{")[0] in recorded, (query.dashboard, query.panel, name)


def test_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    sources = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"].endswith(":9090")
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/movierec.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
