"""``render.yaml``, the Render Blueprint, checked against the fields of Render's Blueprint
specification that it uses (check-jsonschema vendors no Render schema; Render's own is served
from its site, out of reach offline) and against this project: the Dockerfiles it names, the
ports they expose, health routes that exist, settings movierec reads, no literal secret."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from movierec.config import Settings
from tests.deploy.deploy_tools import ROOT

BLUEPRINT = ROOT / "render.yaml"
ROOT_KEYS = {"services", "databases", "envVarGroups", "projects", "ungrouped", "previews"}
SERVICE_TYPES = {"web", "pserv", "worker", "cron", "keyvalue", "redis"}
RUNTIMES = {"docker", "image", "node", "python", "elixir", "go", "ruby", "rust", "static"}
SOURCES = {"value", "generateValue", "sync", "fromDatabase", "fromService", "fromGroup"}
DATABASE_PROPERTIES = {"connectionString", "host", "port", "user", "password", "database"}
HEALTH_ROUTES = {"app.Dockerfile": "/health", "ui.Dockerfile": "/_stcore/health"}
NOT_SETTINGS = {"MOVIEREC_API_URL"}  # the UI client's, not a Settings field
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _env_problems(where: str, variable: dict[str, Any], databases: set[str]) -> list[str]:
    key = variable.get("key", "")
    sources = SOURCES & variable.keys()
    found = [] if len(sources) == 1 else [f"{where} {key}: one source of {sorted(SOURCES)}"]
    if "fromDatabase" in variable:
        ref = variable["fromDatabase"]
        if ref.get("name") not in databases:
            found.append(f"{where} {key}: no database {ref.get('name')!r}")
        if ref.get("property") not in DATABASE_PROPERTIES:
            found.append(f"{where} {key}: unknown property {ref.get('property')!r}")
    if re.search(r"KEY|PASSWORD|SECRET|TOKEN", key) and "value" in variable:
        found.append(f"{where} {key}: a secret written in the blueprint")
    known = {f"MOVIEREC_{field.upper()}" for field in Settings.model_fields} | NOT_SETTINGS
    if key.startswith("MOVIEREC_") and key not in known:
        found.append(f"{where} {key}: movierec has no such setting")
    return found


def _service_problems(service: dict[str, Any], databases: set[str]) -> list[str]:
    where = f"service {service.get('name')!r}"
    found = []
    if not NAME.match(str(service.get("name", ""))):
        found.append(f"{where}: a name is required (lower case, digits, dashes)")
    if service.get("type") not in SERVICE_TYPES:
        found.append(f"{where}: type must be one of {sorted(SERVICE_TYPES)}")
    if service.get("runtime") not in RUNTIMES:
        found.append(f"{where}: runtime must be one of {sorted(RUNTIMES)}")
    dockerfile = ROOT / str(service.get("dockerfilePath", ""))
    if service.get("runtime") == "docker":
        if not dockerfile.is_file():
            return [*found, f"{where}: no Dockerfile at {service.get('dockerfilePath')}"]
        if service.get("dockerContext") != ".":
            found.append(f"{where}: the Dockerfiles build from the repository root")
        text = dockerfile.read_text()
        if service.get("healthCheckPath") != HEALTH_ROUTES.get(dockerfile.name):
            found.append(f"{where}: health check path is not the image's health route")
        ports = {v.get("value") for v in service.get("envVars", []) if v.get("key") == "PORT"}
        if ports != set(re.findall(r"^EXPOSE (\d+)$", text, flags=re.MULTILINE)):
            found.append(f"{where}: PORT must be the port the image listens on")
    for variable in service.get("envVars", []):
        found += _env_problems(where, variable, databases)
    return found


def problems(blueprint: dict[str, Any]) -> list[str]:
    """What is wrong with ``blueprint`` (empty: nothing)."""
    found = [f"unknown root key {key!r}" for key in blueprint.keys() - ROOT_KEYS]
    databases = {db.get("name") for db in blueprint.get("databases", [])}
    names = [service.get("name") for service in blueprint.get("services", [])]
    if len(names) != len(set(names)):
        found.append("service names must be unique")
    for database in blueprint.get("databases", []):
        if not database.get("name"):
            found.append("a database needs a name")
    for service in blueprint.get("services", []):
        found += _service_problems(service, databases)
    return found


def load() -> dict[str, Any]:
    blueprint: dict[str, Any] = yaml.safe_load(BLUEPRINT.read_text())
    return blueprint


def test_the_blueprint_has_no_problem() -> None:
    assert problems(load()) == []


def test_it_deploys_the_api_and_the_ui_with_a_managed_postgresql() -> None:
    blueprint = load()
    services = {service["name"]: service for service in blueprint["services"]}
    assert services["movierec-api"]["dockerfilePath"].endswith("app.Dockerfile")
    assert services["movierec-ui"]["dockerfilePath"].endswith("ui.Dockerfile")
    api_env = {v["key"]: v for v in services["movierec-api"]["envVars"]}
    assert api_env["MOVIEREC_ENVIRONMENT"]["value"] == "production"
    assert api_env["MOVIEREC_API_KEY"] == {"key": "MOVIEREC_API_KEY", "generateValue": True}
    assert api_env["MOVIEREC_DATABASE_URL"]["fromDatabase"]["name"] == "movierec-db"
    assert [db["name"] for db in blueprint["databases"]] == ["movierec-db"]


def test_the_checks_catch_broken_blueprints() -> None:
    cases = {
        "no database 'nowhere'": lambda b: b["services"][0]["envVars"][2]["fromDatabase"].update(
            name="nowhere"
        ),
        "a secret written": lambda b: b["services"][0]["envVars"][3].update(value="hunter2"),
        "no such setting": lambda b: b["services"][0]["envVars"].append(
            {"key": "MOVIEREC_DATABSE_URL", "value": "x"}
        ),
        "no Dockerfile": lambda b: b["services"][1].update(dockerfilePath="./Dockerfile"),
        "PORT must be": lambda b: b["services"][1]["envVars"][0].update(value="8000"),
        "health check path": lambda b: b["services"][0].update(healthCheckPath="/"),
        "runtime must be": lambda b: b["services"][0].update(runtime="dockerfile"),
        "unknown root key": lambda b: b.update(service=[]),
    }
    for expected, breaks in cases.items():
        broken = copy.deepcopy(load())
        breaks(broken)
        found = problems(broken)
        assert any(expected in problem for problem in found), (expected, found)


def test_the_health_routes_are_the_apps() -> None:
    routes = (ROOT / "src" / "movierec" / "serving" / "routes" / "health.py").read_text()
    assert '@router.get("/health")' in routes
    dockerfile = Path(ROOT / "deploy" / "docker" / "ui.Dockerfile").read_text()
    assert "/_stcore/health" in dockerfile
