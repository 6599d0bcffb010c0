"""Batched encoding and faiss search behind one API (CPU or GPU)."""
