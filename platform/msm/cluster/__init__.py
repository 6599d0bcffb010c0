"""Cluster edge: Ray job submission and its runtime environment."""
