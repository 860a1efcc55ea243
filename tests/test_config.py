"""Settings: production refuses unsafe API keys and database passwords; development runs
without them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from movierec.config import Settings


def test_development_needs_no_api_key(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, environment="development", api_key=None)
    assert settings.api_key is None


@pytest.mark.parametrize("key", [None, "", "changeme", "secret", "short-key"])
def test_production_refuses_a_missing_default_or_short_key(tmp_path, key: str | None) -> None:
    with pytest.raises(ValidationError, match="MOVIEREC_API_KEY"):
        Settings(data_dir=tmp_path, environment="production", api_key=key)


def test_production_accepts_a_strong_key_and_hides_it(tmp_path) -> None:
    key = "f3a9c1d27be84e0c9a6d5b1e"
    settings = Settings(data_dir=tmp_path, environment="production", api_key=key)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == key
    assert key not in repr(settings)


def test_limits_reject_nonsense(tmp_path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, max_k=0)


STRONG_KEY = "f3a9c1d27be84e0c9a6d5b1e"


@pytest.mark.parametrize(
    ("variable", "url", "reason"),
    [
        ("database_url", "postgresql+psycopg://movierec@db/movierec", "has no password"),
        ("database_url", "postgresql+psycopg://movierec:@db/movierec", "has no password"),
        ("database_url", "postgresql+psycopg://postgres:postgres@db/x", "default or development"),
        (
            "database_url",
            "postgresql://movierec:dev-only-a7c2e9f1b3@db/x",
            "default or development",
        ),
        ("database_url", "postgresql+psycopg://movierec:s3cret@db/movierec", "shorter than 12"),
        ("mlflow_tracking_uri", "postgresql://mlflow:password@db/mlflow", "default or development"),
    ],
)
def test_production_refuses_a_database_url_without_a_real_password(
    tmp_path, variable: str, url: str, reason: str
) -> None:
    with pytest.raises(ValidationError, match=f"MOVIEREC_{variable.upper()}.*{reason}") as caught:
        Settings(data_dir=tmp_path, environment="production", api_key=STRONG_KEY, **{variable: url})
    credentials = url.split("//", 1)[1].split("@", 1)[0]
    assert credentials not in str(caught.value)  # the message names the problem, not the secret


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://movierec:9c41f0a7d2b85e36@db:5432/movierec",
        # An encoded password is judged decoded: 12 characters, not the 18 of its escapes.
        "postgresql+psycopg://movierec:a%2Fb%40c%3Adefghi@db/movierec",
        None,  # the SQLite file in data_dir: no server, no password
        "postgresql+psycopg:///movierec?host=/var/run/postgresql",  # a socket: peer auth
    ],
)
def test_production_accepts_a_real_password_or_a_file(tmp_path, url: str | None) -> None:
    settings = Settings(
        data_dir=tmp_path,
        environment="production",
        api_key=STRONG_KEY,
        database_url=url,
        mlflow_tracking_uri="http://mlflow:5000",
    )
    assert settings.database_url == url


def test_development_accepts_a_default_database_password(tmp_path) -> None:
    url = "postgresql+psycopg://postgres:postgres@127.0.0.1/movierec"
    assert Settings(data_dir=tmp_path, database_url=url).database_url == url
