"""Property-based fuzzing of every documented route (schemathesis), with every check
schemathesis has (as ``schemathesis run --checks all``) and the admin key: no input, valid or
not, gives a 500; valid input is accepted and invalid input refused, as the schema says; every
answer matches its documented status, schema and content type.

Driven through Hypothesis directly: schemathesis' pytest integration does not run under
pytest 9 yet (``'Function' object has no attribute '_nodeid'``). The checks' settings are the
project's ``schemathesis.toml``, which ``schemathesis run`` reads too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

from movierec.config import Settings
from tests.serving.conftest import API_KEY

CONFIG = Path(__file__).parents[2] / "schemathesis.toml"
ADMIN = {"X-API-Key": API_KEY}
K_BODIES = ("RecommendRequest", "AnonymousRequest", "SimilarRequest")
EXAMPLES = 300  # per generation mode, across all routes: ~15 s on a 2-core machine


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def schema(client: TestClient) -> OpenApiSchema:
    # The module's client has run the lifespan: the app holds its store and model.
    config = SchemathesisConfig.from_path(CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", client.app, config=config)


def test_no_input_breaks_the_contract(schema: OpenApiSchema) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=schema.as_strategy(generation_mode=mode))
        @_settings(EXAMPLES)
        def call(case: schemathesis.Case) -> None:
            # No ``checks``: every check schemathesis registers and the config enables.
            case.call_and_validate(headers=ADMIN)

        call()


def test_the_schema_publishes_the_servers_limits(client: TestClient, ml_settings: Settings) -> None:
    schema = client.get("/openapi.json").json()
    k_bounds = [
        parameter["schema"]["maximum"]
        for path in schema["paths"].values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "k"
    ]
    components = schema["components"]["schemas"]
    k_bounds += [components[name]["properties"]["k"]["maximum"] for name in K_BODIES]
    assert k_bounds == [ml_settings.max_k] * 6
    assert components["NewRating"]["properties"]["rating"]["minimum"] == 0.5
    assert "blend" in components["TuningRequest"]["properties"]["model"]["enum"]
    assert "HTTPValidationError" not in components  # every 422 is the app's ErrorResponse
    links = schema["paths"]["/training"]["post"]["responses"]["202"]["links"]
    assert links["GetJob"]["parameters"] == {"job_id": "$response.body#/job_id"}
