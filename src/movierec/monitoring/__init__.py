"""Monitoring: data drift, the quality of what is served, online feedback."""
