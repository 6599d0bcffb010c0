"""MSM Platform: Masked Sentence Model pretraining for cross-lingual dense retrieval."""

__version__ = "0.1.0"
