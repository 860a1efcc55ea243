"""The OpenAPI schema the app publishes: the routes' own, completed with what this server allows.

The routes are declared once, at import; some of their limits are configuration: the largest
``k`` is ``Settings.max_k`` (the routes declare only its ceiling and check the setting
themselves), and a study tunes one of the registered model families. A client or a fuzzer that
reads the schema must see the limits the server enforces, so the schema built for an app is
completed here with its settings. The app's validation errors are ``{"detail": message}``
(see ``app.validation_message``), so FastAPI's default ``HTTPValidationError`` is replaced by
the app's ``ErrorResponse`` wherever it appears.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from movierec.config import Settings
from movierec.models import MODELS
from movierec.serving.schemas import MAX_K_CEILING, ErrorResponse

JSONObject = dict[str, Any]
_RATED = ("NewRating", "HistoryRating")  # request bodies with a rating on the store's scale
_COMPONENTS = "#/components/schemas/"


def publish_settings(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` return its routes' schema completed for ``settings`` (once built,
    the schema is cached on the app, as FastAPI does)."""
    build = app.openapi

    def openapi() -> JSONObject:
        if app.openapi_schema is None:
            # Once started, the app knows its store's rating scale; before, ratings go unbounded.
            service = getattr(app.state, "service", None)
            scale = service.state.rating_scale if service is not None else None
            app.openapi_schema = completed(build(), settings, scale)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def completed(
    schema: JSONObject, settings: Settings, rating_scale: tuple[float, float] | None = None
) -> JSONObject:
    """``schema`` with the server's ``max_k``, its store's rating scale, the tunable models
    and the app's error body."""
    for k in _k_schemas(schema):
        k["maximum"] = settings.max_k
        k["description"] = f"How many movies: at most {settings.max_k} on this server."
    components = schema.get("components", {}).get("schemas", {})
    if "TuningRequest" in components:
        components["TuningRequest"]["properties"]["model"]["enum"] = sorted(MODELS)
    for name in _RATED:
        if rating_scale is not None and name in components:
            rating = components[name]["properties"]["rating"]
            rating["minimum"], rating["maximum"] = rating_scale
    _use_error_response(schema)
    return schema


def _k_schemas(schema: JSONObject) -> Iterator[JSONObject]:
    """Every ``k`` bounded by the ceiling: query parameters and request body properties."""
    for operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "k" and parameter.get("in") == "query":
                for k in _bounded_by_ceiling(parameter.get("schema", {})):
                    yield k
                    parameter["description"] = k["description"]
    for component in schema.get("components", {}).get("schemas", {}).values():
        yield from _bounded_by_ceiling(component.get("properties", {}).get("k", {}))


def _bounded_by_ceiling(k: JSONObject) -> Iterator[JSONObject]:
    if k.get("maximum") == MAX_K_CEILING:
        yield k


def _operations(schema: JSONObject) -> Iterator[JSONObject]:
    for path in schema.get("paths", {}).values():
        yield from (op for op in path.values() if isinstance(op, dict))


def _use_error_response(schema: JSONObject) -> None:
    """Document the app's validation errors as what it sends: ``ErrorResponse``."""
    for operation in _operations(schema):
        for response in operation.get("responses", {}).values():
            for content in response.get("content", {}).values():
                if content.get("schema", {}).get("$ref") == f"{_COMPONENTS}HTTPValidationError":
                    content["schema"] = {"$ref": f"{_COMPONENTS}ErrorResponse"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
