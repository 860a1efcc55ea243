"""Settings: production refuses unsafe API keys; development runs without one."""

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
