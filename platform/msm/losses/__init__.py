"""Losses, one per file, each documented with its reference."""
