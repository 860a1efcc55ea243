"""The ``movierec`` command line, run as a real process against real stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from movierec.cli import COMPARED_BY_DEFAULT
from movierec.models import MODELS

MOVIEREC = shutil.which("movierec", path=str(Path(sys.executable).parent)) or "movierec"


def run_cli(*args: str, env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``movierec ARGS`` and check its exit status."""
    done = subprocess.run(
        [MOVIEREC, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def run_json(*args: str, env: dict[str, str]) -> Any:
    """Run a command with ``--json`` and parse what it prints."""
    return json.loads(run_cli(*args, "--json", env=env).stdout)


@pytest.fixture
def cli_env(tmp_path: Path, datasets_dir: Path) -> dict[str, str]:
    """An environment with its own data dir (and so its own SQLite store)."""
    return {
        "MOVIEREC_DATA_DIR": str(tmp_path / "data"),
        "MOVIEREC_DATASETS_DIR": str(datasets_dir),
        "MOVIEREC_DATABASE_URL": "",
    }


def test_every_command_has_help(cli_env: dict[str, str]) -> None:
    for command in (
        [],
        ["ingest"],
        ["ingest", "movielens"],
        ["ingest", "csv"],
        ["data", "stats"],
        ["data", "synth"],
        ["data", "log"],
        ["data", "datasets"],
        ["snapshot"],
    ):
        out = run_cli(*command, "--help", env=cli_env).stdout
        assert "Usage" in out


@pytest.mark.slow
def test_ingest_stats_snapshot_round_trip(cli_env: dict[str, str]) -> None:
    first = run_json("ingest", "movielens", "ml-latest-small", env=cli_env)
    assert first["rows_read"] == 100_836
    assert first["store"]["inserted"] == 100_836

    again = run_json("ingest", "movielens", "ml-latest-small", env=cli_env)
    assert again["store"]["inserted"] == 0
    assert again["store"]["skipped_reason"]

    stats = run_json("data", "stats", env=cli_env)
    assert stats["n_ratings"] == 100_836
    assert stats["n_users"] == 610
    assert stats["n_movies"] == 9_742

    snap = run_json("snapshot", env=cli_env)
    assert Path(snap["path"], "ratings.parquet").exists()
    assert snap["n_ratings"] == 100_836
    assert run_json("snapshot", env=cli_env)["content_hash"] == snap["content_hash"]

    log = run_json("data", "log", env=cli_env)
    assert len(log) >= 1


def test_unknown_dataset_is_one_clear_line(cli_env: dict[str, str]) -> None:
    done = run_cli("ingest", "movielens", "ml-7m", env=cli_env, expect=1)
    assert done.stderr.startswith("error:")
    assert "ml-100k" in done.stderr
    assert "Traceback" not in done.stderr


def test_other_dataset_needs_replace(cli_env: dict[str, str]) -> None:
    run_json("ingest", "movielens", "ml-100k", env=cli_env)
    refused = run_cli("ingest", "movielens", "ml-latest-small", env=cli_env, expect=1)
    assert "replace" in refused.stderr
    assert run_json("data", "stats", env=cli_env)["n_ratings"] == 100_000
    run_json("ingest", "movielens", "ml-latest-small", "--replace", env=cli_env)
    assert run_json("data", "stats", env=cli_env)["n_ratings"] == 100_836


def test_csv_with_scores_names_and_bad_rows(cli_env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "scores.csv"
    csv.write_text(
        "user,user_name,film,film_title,score\n"
        "1,ann,10,Heat,80\n"
        "1,ann,11,Alien,35\n"
        "2,bob,10,Heat,not-a-number\n"
        "2,bob,11,Alien,140\n"
        "2,bob,12,Up,0\n"
        "3,cy,12\n"
    )
    args = ["ingest", "csv", str(csv), "--user-col", "user", "--item-col", "film"]
    args += ["--rating-col", "score", "--rating-scale", "0,100"]
    args += ["--user-name-col", "user_name", "--item-name-col", "film_title"]
    outcome = run_json(*args, env=cli_env)
    assert outcome["store"]["inserted"] == 3
    assert outcome["rows_rejected"] == 3
    assert sorted(row["line"] for row in outcome["rejected_samples"]) == [4, 5, 7]

    strict = run_cli(*args, "--strict", env=cli_env, expect=1)
    assert "line 4" in strict.stderr


def test_bad_rating_scale_is_a_usage_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text("user_id,item_id,rating\n1,2,3\n")
    done = run_cli("ingest", "csv", str(csv), "--rating-scale", "5,1", env=cli_env, expect=2)
    assert "low end" in done.stderr


def test_unreachable_database_is_one_clear_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "MOVIEREC_DATABASE_URL": "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"}
    done = run_cli("data", "stats", env=env, expect=1)
    assert done.stderr.startswith("error:")
    assert "secret" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_ingest_into_postgresql(cli_env: dict[str, str], pg_server_url: str) -> None:
    env = {**cli_env, "MOVIEREC_DATABASE_URL": pg_server_url}
    run_json("ingest", "movielens", "ml-100k", "--replace", env=env)
    stats = run_json("data", "stats", env=env)
    assert (stats["n_ratings"], stats["n_users"], stats["n_movies"]) == (100_000, 943, 1_682)


@pytest.mark.slow
def test_compare_ranks_personalized_models_above_popularity(cli_env: dict[str, str]) -> None:
    board = run_json(
        "compare", "--models", "popularity,item_knn", "--dataset", "ml-100k", env=cli_env
    )
    assert [report["model"] for report in board] == ["item_knn", "popularity"]
    assert board[0]["metrics"]["ndcg@10"] > board[1]["metrics"]["ndcg@10"]
    assert board[0]["split"] == "user_temporal"


def test_compare_runs_the_blends_by_default(cli_env: dict[str, str]) -> None:
    shown = run_cli("compare", "--help", env={**cli_env, "COLUMNS": "200"}).stdout
    assert f"[default: {COMPARED_BY_DEFAULT}]" in shown
    assert COMPARED_BY_DEFAULT.split(",")[-2:] == ["blend", "rating_blend"]
    assert all(name in MODELS for name in COMPARED_BY_DEFAULT.split(","))


@pytest.mark.slow
def test_evaluate_on_the_official_folds(cli_env: dict[str, str]) -> None:
    report = run_json(
        "evaluate",
        "--model",
        "baseline",
        "--dataset",
        "ml-100k",
        "--protocol",
        "ml100k_official",
        env=cli_env,
    )
    assert report["split_params"]["folds"] == [f"ml100k-u{i}" for i in range(1, 6)]
    assert 0.93 < report["metrics"]["rmse"] < 0.96  # scikit-surprise's BaselineOnly: 0.946


@pytest.mark.slow
def test_train_then_recommend_and_similar(cli_env: dict[str, str]) -> None:
    run_json("ingest", "movielens", "ml-latest-small", env=cli_env)
    trained = run_json("train", "--model", "item_knn", env=cli_env)
    assert Path(trained["path"], "arrays.npz").exists()

    recs = run_json("recommend", "--user", "1", "--model", "item_knn", "-k", "5", env=cli_env)
    assert recs["strategy"] == "personalized"
    assert len(recs["items"]) == 5
    assert all(item["title"] for item in recs["items"])

    stranger = run_json("recommend", "--user", "999999", "--model", "item_knn", env=cli_env)
    assert stranger["strategy"] == "popular_fallback"
    assert stranger["items"][0]["title"] == "Forrest Gump"

    similar = run_json("similar", "--movie", "1", "--model", "item_knn", "-k", "5", env=cli_env)
    assert 1 not in [item["movie_id"] for item in similar["items"]]

    unknown = run_cli(
        "similar", "--movie", "424242424", "--model", "item_knn", env=cli_env, expect=1
    )
    assert "unknown" in unknown.stderr
    missing = run_cli("recommend", "--user", "1", "--model", "ease", env=cli_env, expect=1)
    assert "movierec train" in missing.stderr


def test_model_commands_refuse_bad_arguments(cli_env: dict[str, str]) -> None:
    done = run_cli("evaluate", "--model", "svd", "--param", "oops", env=cli_env, expect=2)
    assert "KEY=VALUE" in done.stderr
    unknown = run_cli("compare", "--models", "popularity,nope", env=cli_env, expect=1)
    assert "known models" in unknown.stderr
    negative = run_cli("recommend", "--user", "1", "-k", "-3", env=cli_env, expect=2)
    assert "greater than or equal to 1" in negative.stderr
