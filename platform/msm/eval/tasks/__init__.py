"""One module per evaluation task; each exposes ``evaluate(encoder, data_dir, ...) -> list[Result]``."""
