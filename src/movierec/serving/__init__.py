"""The HTTP API: recommendations, catalog, users, live ratings, training jobs and hot reload.

``create_app(settings)`` in :mod:`movierec.serving.app` builds the FastAPI application; ``serve``
runs it under uvicorn. Serving imports models and data, never ``movierec.training``.
"""
