"""Evaluation: retrieval metrics, task loaders and the report."""
