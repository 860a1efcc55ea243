"""The API contract as a user checks it: Schemathesis's own command line, every check, against a
real server, in the phases ``test_fuzz.py`` leaves out: *coverage* (each parameter's
boundaries, types and missing values) and *stateful* (chains of calls following the links it
infers, e.g. a posted rating's user then recommended to). The stateful phase runs here and not
through Schemathesis's pytest integration, where Hypothesis replays a failing chain against a
server whose state has moved on and stops with ``FlakyStrategyDefinition`` instead of the
failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from movierec.config import Settings
from tests.servers import api_server
from tests.serving.conftest import API_KEY

CONFIG = Path(__file__).parents[2] / "schemathesis.toml"
# Training and tuning start real jobs (minutes of CPU each) in a real server: their contract
# is checked in process by test_fuzz.py, with quick job commands.
JOB_ROUTES = "^/(training|tuning)"


def test_every_check_in_the_coverage_and_stateful_phases(
    ml_settings: Settings, tmp_path: Path
) -> None:
    with api_server(ml_settings) as url:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG),
                "run", "--checks", "all",
                "--phases", "coverage,stateful", "--max-examples", "10", "--seed", "1",
                "--exclude-path-regex", JOB_ROUTES, "-H", f"X-API-Key: {API_KEY}",
                "--no-color", f"{url}/openapi.json",
            ],
            # Its own folder: Schemathesis keeps a cache (.schemathesis/) where it runs.
            cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]  # 1: a failure found
    summary = run.stdout.strip().splitlines()[-1]  # "== No issues found in ... ==" or warnings
    assert "failure" not in summary, summary
