"""Evaluation: rating, ranking and beyond-accuracy metrics, and the evaluation protocol.

It knows nothing of MLflow or HTTP; models hand it their recommendations as plain arrays.
"""
