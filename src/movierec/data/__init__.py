"""The data layer: sources, the ratings store, snapshots, Interactions and splits.

It knows nothing of models, MLflow or HTTP.
"""
