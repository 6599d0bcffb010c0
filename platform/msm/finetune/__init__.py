"""Bi-encoder contrastive fine-tuning (``msm finetune``): readers, sentence-transformers trainer, Ray Train wiring."""
