"""``deploy/docker-compose.yml`` checked by the Compose binary itself (``docker-compose config``
validates and resolves without an engine) for the default and every profile, and the resolved
model checked for what the deployment promises: start-up order by health, no default secret,
the API's replicas behind nginx, Prometheus and Grafana wired to them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_tools import (
    COMPOSE_FILE,
    DEPLOY,
    ROOT,
    compose,
    read_env,
    resolved,
    run,
    write_env,
)
from tests.deploy.prometheus_tools import promtool

RAW = yaml.safe_load(COMPOSE_FILE.read_text())
PROFILES = sorted({p for service in RAW["services"].values() for p in service.get("profiles", [])})
SECRETS = ("POSTGRES_PASSWORD", "MOVIEREC_API_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
           "GRAFANA_ADMIN_PASSWORD", "PGADMIN_DEFAULT_PASSWORD")  # fmt: skip
ONE_SHOT = {"preflight", "minio-init", "ingest", "trainer"}


def test_the_profiles_are_the_documented_ones() -> None:
    assert PROFILES == ["airflow", "pgadmin", "production"]


@pytest.mark.parametrize("profiles", [(), *[(p,) for p in PROFILES], tuple(PROFILES)])
def test_compose_accepts_the_file_with_the_example_env(profiles: tuple[str, ...]) -> None:
    done = compose("config", "--quiet", profiles=profiles)
    assert done.returncode == 0, done.stderr


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    # The same helper on a copy whose API waits for a service that does not exist.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["api"]["depends_on"]["trainer-typo"] = {"condition": "service_healthy"}
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(yaml.safe_dump(broken))
    done = compose("config", "--quiet", file=copy)
    assert done.returncode != 0
    assert "trainer-typo" in done.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_a_missing_secret_stops_compose_naming_it(tmp_path: Path, secret: str) -> None:
    env = read_env()
    del env[secret]
    done = compose("config", "--quiet", env_file=write_env(tmp_path / "env", env))
    assert done.returncode != 0
    assert f"set {secret} in deploy/.env" in done.stderr


def test_no_secret_has_a_default_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    for secret in SECRETS:
        uses = re.findall(rf"\$\{{{secret}(:?[-?+])?", text)
        assert ":?" in uses, f"{secret} is never required with ${{{secret}:?...}}"
        assert not {":-", "-", ":+", "+"} & set(uses), f"{secret} has a default"


def test_every_secret_of_the_example_is_a_development_value() -> None:
    # The production preflight and movierec's production settings refuse "dev-..." values, so
    # copying the example unchanged can never reach production.
    env = read_env()
    for secret in SECRETS:
        assert env[secret].startswith("dev-"), secret
    assert env["MOVIEREC_ENVIRONMENT"] == "development"


def _healthcheck_of(name: str, service: dict[str, Any]) -> bool:
    """Whether ``service`` has a health check: its own, or its Dockerfile's HEALTHCHECK."""
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    build = service.get("build")
    if build is None:
        return False
    dockerfile = Path(build["context"]) / build["dockerfile"]
    return "\nHEALTHCHECK " in dockerfile.read_text()


@pytest.mark.parametrize("profiles", [(), tuple(PROFILES)])
def test_start_up_order_waits_for_health_or_completion(profiles: tuple[str, ...]) -> None:
    services = resolved(profiles)["services"]
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            if target not in services:  # a profile's service, optional outside it
                assert spec.get("required") is False, (name, target)
                continue
            if target in ONE_SHOT:
                assert spec["condition"] == "service_completed_successfully", (name, target)
            else:
                assert spec["condition"] == "service_healthy", (name, target)
                assert _healthcheck_of(target, services[target]), f"{target} has no health check"


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart() -> None:
    services = resolved(tuple(PROFILES))["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", name
        elif name != "scheduler":  # no port to ask; compose restarts it if it exits
            assert _healthcheck_of(name, service), f"{name} has no health check"


def test_production_profile_starts_nothing_before_the_preflight() -> None:
    services = resolved(("production", "airflow", "pgadmin"))["services"]

    def waits_for_preflight(name: str, seen: frozenset[str] = frozenset()) -> bool:
        depends = services[name].get("depends_on", {})
        return "preflight" in depends or any(
            waits_for_preflight(target, seen | {name}) for target in depends if target not in seen
        )

    assert all(waits_for_preflight(name) for name in services if name != "preflight")
    preflight = services["preflight"]
    assert preflight["command"] == ["python", "/preflight/preflight.py"]
    mounted = {(m["source"], m["target"]) for m in preflight["volumes"]}
    assert (str(DEPLOY / "docker" / "preflight.py"), "/preflight/preflight.py") in mounted


def test_api_replicas_sit_behind_nginx_only() -> None:
    services = resolved()["services"]
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    assert "ports" not in api  # nginx is the way in
    port = api["command"][api["command"].index("--port") + 1]
    nginx_conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert re.search(rf"server api:{port} resolve", nginx_conf)
    listen = re.search(r"listen (\d+);", nginx_conf)
    assert listen is not None
    assert [p["target"] for p in services["nginx"]["ports"]] == [int(listen.group(1))]
    # A replica that fails is skipped, and a POST that reached one is never resent.
    retry = re.search(r"proxy_next_upstream ([^;]+);", nginx_conf)
    assert retry is not None
    assert {"error", "timeout", "http_502", "http_503"} <= set(retry.group(1).split())
    assert "non_idempotent" not in retry.group(1)
    assert services["ui"]["environment"]["MOVIEREC_API_URL"] == f"http://nginx:{listen.group(1)}"


def test_every_movierec_service_talks_to_the_compose_stores() -> None:
    services = resolved(("airflow",))["services"]
    env = read_env()
    for name in ("ingest", "trainer", "api", "scheduler", "airflow"):
        environment = services[name]["environment"]
        url = environment["MOVIEREC_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://"), name
        assert f":{env['POSTGRES_PASSWORD']}@postgres:5432/" in url, name
        assert environment["MOVIEREC_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
    mlflow = services["mlflow"]
    assert "--serve-artifacts" in mlflow["command"]
    assert "--artifacts-destination=s3://mlflow/" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert any(arg.endswith("@postgres:5432/mlflow") for arg in mlflow["command"])
    # The bucket MLflow writes to is the one the init job creates.
    assert services["minio-init"]["environment"]["MLFLOW_BUCKET"] == "mlflow"
    init_sql = (DEPLOY / "postgres" / "init-databases.sql").read_text()
    assert "CREATE DATABASE mlflow;" in init_sql
    assert "CREATE DATABASE airflow;" in init_sql


def test_prometheus_config_of_compose_is_valid_and_scrapes_every_replica() -> None:
    config_file = DEPLOY / "prometheus" / "prometheus.compose.yml"
    done = promtool("check", "config", config_file)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(config_file.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (discovery,) = jobs["movierec-api"]["dns_sd_configs"]
    assert discovery == {"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "15s"}
    prometheus = resolved()["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in prometheus["command"]


def test_grafana_of_compose_gets_the_native_datasource_on_the_compose_network() -> None:
    native = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    ours = yaml.safe_load((DEPLOY / "grafana" / "compose" / "datasources.yml").read_text())
    (native_source,), (our_source,) = native["datasources"], ours["datasources"]
    assert our_source["url"] == "http://prometheus:9090"
    assert {**native_source, "url": our_source["url"]} == our_source
    grafana = resolved()["services"]["grafana"]
    targets = {m["target"] for m in grafana["volumes"]}
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "movierec.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] in targets


def test_compose_file_matches_the_compose_specification_schema() -> None:
    done = run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_deploy_guide_names_every_service() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for name in resolved(tuple(PROFILES))["services"]:
        assert f"`{name}`" in guide, f"docs/deploy.md does not mention the {name} service"
