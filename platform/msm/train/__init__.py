"""MSM pretraining: a plain per-worker loop (usable without Ray) wired into Ray Train's TorchTrainer."""
