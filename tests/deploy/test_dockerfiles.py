"""``deploy/docker``: every Dockerfile is hadolint-clean, multi-stage, ends as a non-root user
with a health check, copies only what ``.dockerignore`` lets into the context (never data), and
installs pinned versions: the lock pins every run-time dependency of movierec at a version its
requirements accept, and the UI image's short list covers every import of the UI."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_tools import DOCKER_DIR, DOCKERFILES, ROOT, run

LOCK = DOCKER_DIR / "requirements.lock"
DOCKERIGNORE = ROOT / ".dockerignore"
SRC = ROOT / "src"
# What must never reach an image: data, stores, models, environments, secrets, tests.
LEFT_OUT = (
    "data/movierec.db",
    "data/snapshots/a/ratings.parquet",
    "data/models/als/factors.npz",
    "mlruns/0/meta.yaml",
    ".venv/bin/python",
    "deploy/.env",
    "src/movierec/x.db",
    "src/movierec/__pycache__/cli.cpython-311.pyc",
    "tests/conftest.py",
)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(" ", 1)[0].upper(), text.split(" ", 1)[1]) for text in logical]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_there_are_the_four_images() -> None:
    names = {path.name for path in DOCKERFILES}
    assert names == {"app.Dockerfile", "ui.Dockerfile", "mlflow.Dockerfile", "airflow.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    done = run("hadolint", "--no-color", dockerfile)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    done = run("hadolint", "--no-color", careless)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # :latest
    assert "DL3008" in done.stdout  # unpinned apt package


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_non_root_with_a_health_check(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    assert sum(op == "FROM" for op, _ in steps) >= 2, "one stage builds, another runs"
    last = final_stage(dockerfile)
    users = [args for op, args in last if op == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(op == "HEALTHCHECK" for op, _ in last)
    # Nothing of the build (compilers, caches, sources) reaches the final stage but the venv.
    copies = [args for op, args in last if op == "COPY" and "--from=" in args]
    assert copies, "the final stage copies the built environment from the build stage"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_python_3_11_slim_or_airflow(dockerfile: Path) -> None:
    args = dict(
        arg.split("=", 1) for op, arg in instructions(dockerfile) if op == "ARG" and "=" in arg
    )
    images = {value for key, value in args.items() if key.endswith("_IMAGE")}
    assert len(images) == 1
    (image,) = images
    assert image == "python:3.11-slim-bookworm" or re.fullmatch(
        r"apache/airflow:\d+\.\d+\.\d+-python3\.11", image
    )


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern that matches
    it or one of its parent folders decides (``!`` puts it back)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        globs = {glob, glob.removeprefix("**/")} if glob.startswith("**/") else {glob}
        if any(fnmatch.fnmatchcase(c, g) for c in candidates for g in globs):
            ignored = not negated
    return ignored


def _dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_file_is_in_the_build_context(dockerfile: Path) -> None:
    patterns = _dockerignore()
    for op, args in instructions(dockerfile):
        if op != "COPY" or "--from=" in args:
            continue
        *sources, _ = [word for word in args.split() if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not _ignored(source, patterns), f"{source} is left out by .dockerignore"


def test_the_context_is_an_allow_list_without_data() -> None:
    patterns = _dockerignore()
    assert patterns[0] == "*", "everything is left out unless named"
    for kept in ("src/movierec/cli.py", "pyproject.toml", "params.yaml"):
        assert not _ignored(kept, patterns), kept
    for left_out in LEFT_OUT:
        assert _ignored(left_out, patterns), left_out


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_runtime_dependency_at_an_accepted_version() -> None:
    pins = _pins(LOCK)
    requirements = [Requirement(text) for text in metadata.requires("movierec") or []]
    runtime = [r for r in requirements if r.marker is None]  # extras carry a marker
    assert runtime
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is missing from {LOCK.name}: run deploy/docker/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            requirement,
            pins[name],
        )
        for extra in requirement.extras:  # psycopg[binary], uvicorn[standard]
            for sub in metadata.requires(requirement.name) or []:
                needed = Requirement(sub)
                if needed.marker is not None and needed.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(needed.name) in pins, (requirement, needed)


@pytest.mark.parametrize("name", ["ui-requirements.txt", "mlflow-requirements.txt"])
def test_the_short_lists_are_pinned_by_the_lock_or_themselves(name: str) -> None:
    pins = _pins(LOCK)
    for line in (DOCKER_DIR / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pinned = str(requirement.specifier).startswith("==")
            assert pinned or canonicalize_name(requirement.name) in pins, line


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` install, with all their (non-extra) dependencies."""
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def _imports(module: str, found: set[str], visited: set[str]) -> None:
    """Top-level third-party modules that ``module`` imports, following movierec's own."""
    if module in visited:
        return
    visited.add(module)
    path = SRC / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = SRC / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.startswith("movierec"):
                _imports(name, found, visited)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                found.add(name.split(".")[0])


def test_the_ui_image_installs_everything_the_ui_imports() -> None:
    found: set[str] = set()
    visited: set[str] = set()
    for path in (SRC / "movierec" / "ui").rglob("*.py"):
        _imports(".".join(path.relative_to(SRC).with_suffix("").parts), found, visited)
    assert "movierec.client" in visited  # the UI's way to the API is followed
    listed = {Requirement(line).name for line in (DOCKER_DIR / "ui-requirements.txt")
              .read_text().splitlines() if line.strip() and not line.startswith("#")}  # fmt: skip
    installed = _closure(listed)
    providers = metadata.packages_distributions()
    for module in sorted(found):
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        assert distributions & installed, f"the UI imports {module}, which the UI image lacks"
    # The point of a separate image: the API's heavy dependencies stay out.
    assert not {"mlflow", "scipy", "numba", "fastapi", "sqlalchemy"} & installed
