"""What both experiments share: training one MSM variant in process, evaluating a model, the device name, the
score table (mean ± sd over seeds) and rewriting one marked section of ``docs/RESULTS.md``."""

from __future__ import annotations

from pathlib import Path

from msm.config import load_config, parse_overrides
from msm.tables import markdown_table, mean_sd
from msm.train.config import PretrainConfig

VARIANTS = {  # name -> overrides of the pretrain config
    "reference": [],  # single-language batches, memory bank, balance bias (as the paper)
    "cross-lingual": ["data.cross_lingual=0.5"],  # + code-switched copies of aligned documents (ours)
    "no-doc-encoder": ["model.doc_encoder=false"],  # predict a sentence from the mean of its neighbours
    "no-bias": ["model.balance_bias=0.0"],
    "no-bank": ["model.memory_bank_size=0"],
    "mlm-only": ["model.doc_weight=0.0", "model.mlm_weight=1.0"],
}


def pretrain_config(config: Path, overrides: list[str]):
    return load_config(config, PretrainConfig, parse_overrides(overrides))


def train_variant(variant: str, seed: int, steps: int, target: Path, mined: Path, data_dir: Path | None,
                  config: Path, extra: list[str]) -> Path:
    """Pretrain one MSM variant into ``target`` in this process (an interrupted run continues) and return its
    exported encoder folder."""
    from msm.model.msm import MSMModel  # lazy: torch
    from msm.train.loop import latest_local_checkpoint  # lazy: pyarrow, torch
    from msm.train.trainer import run_local, save_exports  # lazy: pyarrow, torch

    if (target / "export" / "config.json").is_file():
        return target / "export"
    overrides = [f"data.path={mined}", f"run.output_dir={target}", f"run.seed={seed}", f"optim.max_steps={steps}",
                 f"run.checkpoint_every={max(1, steps // 5)}", "run.keep_checkpoints=1", "validation.every_steps=-1",
                 *VARIANTS[variant]] + ([f"data.data_dir={data_dir}"] if data_dir else [])
    cfg = pretrain_config(config, overrides + extra)
    run_local(cfg, resume=latest_local_checkpoint(target) is not None)
    save_exports(MSMModel.load(latest_local_checkpoint(target) / "model"), target)
    return target / "export"


def evaluate(model: str, data_dir: Path, pairs: int, tasks: list[str]) -> dict[str, float]:
    """Tatoeba on the first ``pairs`` pairs (128 tokens); XQuAD-R in full (the official pool, 256 tokens)."""
    from msm.eval.run import run_eval  # lazy: pyarrow

    scores = {}
    for task in tasks:
        limit, length = (pairs, 128) if task == "tatoeba" else (None, 256)
        for r in run_eval(model, [task], data_dir, limit=limit, max_length=length, log=lambda *_: None):
            scores[f"{r.language} {r.metric}"] = r.value
    return scores


def device_name(use_gpu: bool) -> str:
    import torch  # lazy: torch

    if use_gpu and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({torch.get_num_threads()} torch threads)"


def score_table(rows: dict[str, list[dict[str, float]]], keys: list[str], label: str = "model") -> str:
    """One row per name: each key's mean (± sd over seeds, when more than one)."""
    body = [[name, len(runs), *(mean_sd([r[k] for r in runs if k in r]) for k in keys)] for name, runs in rows.items()]
    return markdown_table([label, "seeds", *keys], body, right=range(1, len(keys) + 2))


def write_section(path: Path, section: str, md: str) -> bool:
    """Replace the text between ``<!-- section:start -->`` and ``<!-- section:end -->``; False if absent."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        print(f"(no {start} … {end} markers in {path}: the table is printed only)")
        return False
    path.write_text(text[: text.index(start) + len(start)] + "\n" + md + "\n" + text[text.index(end):])
    return True
