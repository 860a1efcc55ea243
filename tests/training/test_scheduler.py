"""Scheduled retraining against a real store, a real MLflow registry and a real APScheduler."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from apscheduler.schedulers.background import BackgroundScheduler
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError
from movierec.training import tracking
from movierec.training.pipeline import ModelSpec, PipelineConfig, run_pipeline
from movierec.training.scheduler import (
    build_scheduler,
    new_ratings_reason,
    parse_cron,
    retrain_if_new_ratings,
)

CONFIG = PipelineConfig(dataset="ml-100k", models=[ModelSpec(model="popularity")])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path) -> Settings:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("scheduler"),
        datasets_dir=datasets_dir,
        mlflow_tracking_uri=None,
    )
    run_pipeline(settings, CONFIG)
    return settings


@pytest.fixture(scope="module")
def config_path(settings: Settings) -> Path:
    path = settings.data_dir / "params.yaml"
    path.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    return path


def _champion(settings: Settings) -> int:
    return next(v.version for v in tracking.list_versions(settings) if "champion" in v.aliases)


def _add_ratings(settings: Settings, user_id: int) -> None:
    with RatingsStore.from_settings(settings) as store:
        store.append(user_id=user_id, item_id=1, rating=5.0)


def test_no_new_ratings_means_no_retraining(settings: Settings) -> None:
    assert new_ratings_reason(settings) is None
    outcome = retrain_if_new_ratings(settings, CONFIG)
    assert not outcome.retrained
    assert outcome.result is None


def test_new_ratings_retrain_and_apply_the_promotion_rule(settings: Settings) -> None:
    versions_before = len(tracking.list_versions(settings))
    _add_ratings(settings, 200_001)
    assert new_ratings_reason(settings) == "+1 ratings since the champion's data"
    outcome = retrain_if_new_ratings(settings, CONFIG)
    assert outcome.retrained
    assert outcome.result is not None
    assert outcome.result.decision is not None
    assert outcome.result.decision.champion_score is not None
    assert len(tracking.list_versions(settings)) == versions_before + 1
    if outcome.result.decision.promoted:  # the rule may keep the old champion: both are valid
        assert new_ratings_reason(settings) is None


def test_a_real_cron_scheduler_retrains_on_its_tick(settings: Settings, config_path: Path) -> None:
    _add_ratings(settings, 200_002)
    versions_before = len(tracking.list_versions(settings))
    scheduler = build_scheduler(settings, config_path, "* * * * * *", blocking=False)
    assert isinstance(scheduler, BackgroundScheduler)
    scheduler.start()
    try:
        deadline = time.monotonic() + 120
        while len(tracking.list_versions(settings)) == versions_before:
            assert time.monotonic() < deadline, "the scheduled job never retrained"
            time.sleep(0.5)
    finally:
        scheduler.shutdown(wait=True)
    assert len(tracking.list_versions(settings)) == versions_before + 1
    assert len([v for v in tracking.list_versions(settings) if "champion" in v.aliases]) == 1


@pytest.mark.parametrize(
    ("expression", "message"),
    [("* * *", "needs 5 fields"), ("61 * * * *", "invalid cron"), ("a b c d e", "invalid cron")],
)
def test_bad_cron_expressions_are_clear_errors(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cron(expression)


def test_cron_fields_are_read_in_crontab_order() -> None:
    trigger = parse_cron("30 3 * * mon")
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "3", "mon")


def test_a_bad_config_fails_when_the_scheduler_is_built(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("models: []")
    with pytest.raises(ConfigError, match="models"):
        build_scheduler(settings, path, "0 3 * * *")


def test_schedule_once_from_the_command_line(
    settings: Settings, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEREC_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("MOVIEREC_MLFLOW_TRACKING_URI", raising=False)
    latest = tracking.list_versions(settings)[0].version
    tracking.promote(settings, latest)  # trained on the store as it is now
    champion = _champion(settings)
    result = CliRunner().invoke(app, ["schedule", "--once", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "no new ratings" in result.output
    assert _champion(settings) == champion
