"""``.github/workflows/ci.yml`` validated against GitHub's workflow schema (``check-jsonschema``
vendors it; no network), and checked for what CI must do: lint, types and the whole suite on
push and pull request with PostgreSQL and MariaDB services, the same system packages as the
Makefile, and image builds of every Dockerfile on the main branch only."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.deploy_tools import DOCKERFILES, ROOT, run

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
CI = yaml.safe_load(WORKFLOW.read_text())
# PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
TRIGGERS = CI.get("on", CI.get(True))


def check(path: Path) -> tuple[int, str]:
    done = run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", path)
    return done.returncode, done.stdout + done.stderr


def test_the_workflow_matches_githubs_schema() -> None:
    code, output = check(WORKFLOW)
    assert code == 0, output


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1)
    copy = tmp_path / "ci.yml"
    copy.write_text(broken)
    code, _ = check(copy)
    assert code != 0


def test_runs_on_push_and_pull_request() -> None:
    assert set(TRIGGERS) == {"push", "pull_request"}


def test_the_suite_runs_against_postgresql_and_mariadb_services() -> None:
    job = CI["jobs"]["test"]
    assert set(job["services"]) == {"postgres", "mariadb"}
    assert job["env"]["MOVIEREC_TEST_PG_URL"].endswith("@postgres:5432/postgres")
    assert job["env"]["MOVIEREC_TEST_MYSQL_URL"].endswith("@mariadb:3306/mysql")
    commands = [step.get("run", "") for step in job["steps"]]
    assert "make test" in commands  # ruff, mypy and the whole suite, as a developer runs it
    lint = " ".join(step.get("run", "") for step in CI["jobs"]["lint"]["steps"])
    assert "ruff check" in lint
    assert "ruff format --check" in lint


def test_ci_installs_the_system_packages_the_makefile_installs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    wanted = {pkg for line in re.findall(r"apt-get install -y -qq ([^\n]+)", makefile)
              for pkg in line.split()}  # fmt: skip
    assert {"chromium", "prometheus"} <= wanted
    steps = " ".join(step.get("run", "") for step in CI["jobs"]["test"]["steps"])
    installed = {pkg for line in re.findall(r"apt-get install -y -qq ([^\n]+)", steps)
                 for pkg in line.split()}  # fmt: skip
    assert wanted <= installed


def test_images_are_built_on_main_only_and_every_dockerfile_is_built() -> None:
    job = CI["jobs"]["images"]
    assert "github.ref == 'refs/heads/main'" in job["if"]
    assert set(job["needs"]) == {"lint", "test"}
    build = next(step["run"] for step in job["steps"] if "docker build" in step.get("run", ""))
    loop = re.search(r"for image in ([a-z ]+); do", build)
    assert loop is not None
    built = {f"{name}.Dockerfile" for name in loop.group(1).split()}
    assert built == {path.name for path in DOCKERFILES}
    # Pushed under the names deploy/docker-compose.yml runs (MOVIEREC_IMAGE[-ui|-mlflow|...]).
    push = next(step["run"] for step in job["steps"] if "docker push" in step.get("run", ""))
    pushed = re.search(r"for name in ([a-z -]+); do", push)
    assert pushed is not None
    compose = (ROOT / "deploy" / "docker-compose.yml").read_text()
    named = set(re.findall(r"image: \$\{MOVIEREC_IMAGE:-movierec\}(-?[a-z]*):", compose))
    assert set(pushed.group(1).split()) == {f"movierec{suffix}" for suffix in named}
