"""movierec: a production-grade movie recommender system."""

__version__ = "0.1.0"
