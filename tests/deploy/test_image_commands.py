"""The commands the images and the Compose services run are real: each ``movierec`` command line
(the app image's default, every Compose service's) parses with movierec's own CLI, Streamlit
reads the UI image's settings from its environment variables, and the UI image's entry point is
where the installed package puts the app."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from streamlit.web import cli as streamlit_cli

import movierec.ui
from movierec.cli import app
from tests.deploy.deploy_tools import DOCKER_DIR, resolved
from tests.deploy.test_dockerfiles import final_stage

CLI = typer.main.get_command(app)


def parses(words: list[str]) -> None:
    """Parse ``words`` (after ``movierec``) as the CLI would, down to the leaf command, without
    running it; raises the CLI's usage error for an unknown option or a bad value, LookupError
    for an unknown command. (Typer ships its own copy of click: duck typing, not isinstance.)"""
    command: Any = CLI
    name, args, parent = "movierec", list(words), None
    while hasattr(command, "commands"):  # a group
        context = command.context_class(command, info_name=name, parent=parent)
        if not args:
            raise LookupError(f"{name}: no command")
        name, *args = args
        found = command.get_command(context, name)
        if found is None:
            raise LookupError(f"{context.command_path}: no command {name!r}")
        command, parent = found, context
    command.make_context(name, args, parent=parent)


def json_form(value: str) -> list[str]:
    words: list[str] = json.loads(value)
    return words


def test_parse_rejects_what_the_cli_rejects() -> None:
    with pytest.raises(Exception, match="No such option: --wokers"):
        parses(["serve", "--wokers", "2"])
    with pytest.raises(LookupError, match="no command 'runn'"):
        parses(["pipeline", "runn"])
    with pytest.raises(Exception, match="greater than or equal to 1"):
        parses(["serve", "--port", "0"])


def test_the_app_image_default_command_parses() -> None:
    steps = dict(final_stage(DOCKER_DIR / "app.Dockerfile"))
    assert json_form(steps["ENTRYPOINT"]) == ["movierec"]
    command = json_form(steps["CMD"])
    parses(command)
    assert command[command.index("--port") + 1] == steps["EXPOSE"]


@pytest.mark.parametrize("service", ["ingest", "trainer", "api", "scheduler"])
def test_every_compose_movierec_command_parses(service: str) -> None:
    command = resolved()["services"][service]["command"]
    parses(command)
    # The pipeline's parameters are where the image puts them.
    if "--config" in command:
        assert command[command.index("--config") + 1] == "/app/params.yaml"
    assert (
        "COPY --chown=movierec:movierec params.yaml /app/params.yaml"
        in (DOCKER_DIR / "app.Dockerfile").read_text()
    )


def test_streamlit_reads_the_ui_images_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # `streamlit run` reads STREAMLIT_* variables as its options (click's envvar): parse its
    # command line in the image's environment and read what it got.
    steps = final_stage(DOCKER_DIR / "ui.Dockerfile")
    env_text = next(args for op, args in steps if op == "ENV")
    env = dict(re.findall(r"(STREAMLIT_\w+)=(\S+)", env_text))
    assert len(env) == 5
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    context = streamlit_cli.main.make_context("streamlit", ["run", "app.py"])
    run = streamlit_cli.main.get_command(context, "run")
    assert run is not None
    options = run.make_context("run", ["app.py"], parent=context).params
    assert options["server_address"] == "0.0.0.0"
    assert options["server_port"] == 8501
    assert options["server_headless"] is True
    assert options["browser_gatherUsageStats"] is False
    assert options["client_toolbarMode"] == "viewer"


def test_the_ui_entry_point_is_the_installed_app() -> None:
    steps = dict(final_stage(DOCKER_DIR / "ui.Dockerfile"))
    entry = json_form(steps["ENTRYPOINT"])
    assert entry[:2] == ["streamlit", "run"]
    app_file = Path(movierec.ui.__file__).parent / "app.py"
    assert app_file.is_file()
    # /opt/venv/lib/python3.11/site-packages/ + the package's own path to its app.
    assert entry[2] == "/opt/venv/lib/python3.11/site-packages/movierec/ui/app.py"
    assert "python:3.11-" in (DOCKER_DIR / "ui.Dockerfile").read_text()
