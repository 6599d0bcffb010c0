"""One MSM training step (forward + backward): our batched formulation vs the naive S-copies one.

Ours encodes every sentence once and builds the S masked copies only in the 2-layer document encoder.
The naive formulation re-runs the sentence encoder for every masked copy (S × the encoder work).
Each measurement runs in a fresh subprocess; peak memory = that process's max RSS (ru_maxrss).

    python benchmarks/msm_step.py                       # CPU, e5-small
    python benchmarks/msm_step.py --device cuda --dtype bf16 --docs 32   # GPU: docs/s and MFU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "msm_step.json"
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16


def make_batch(tokenizer, docs: int, sentences: int, tokens: int):
    import torch

    from msm.model.batching import collate
    from msm.model.smoke import default_data_dir, load_documents

    texts, _, _ = load_documents(default_data_dir(), max_docs_per_lang=50)
    flat = [s for doc in texts for s in doc]
    blocks = [flat[i * sentences:(i + 1) * sentences] for i in range(docs)]
    batch = collate(blocks, [0] * docs, tokenizer, sentences, tokens)
    batch["attention_mask"][:] = 1  # full-length sentences: the worst case the budget allows
    return {k: v for k, v in batch.items()}, torch


def naive_loss(model, batch):
    """Masked copies built by re-encoding every sentence once per masked position."""
    import torch

    from msm.losses.hierarchical_contrastive import hierarchical_contrastive_loss

    smask = batch["sentence_mask"]
    b, s, _ = batch["input_ids"].shape
    preds, targets = [], None
    for i in range(s):
        vectors, _ = model.sentence_encoder(batch["input_ids"][smask], batch["attention_mask"][smask])
        sent = vectors.new_zeros(b, s, vectors.shape[-1])
        sent[smask] = vectors
        docs = torch.arange(b)
        preds.append(model.document_encoder(sent, smask, docs, torch.full((b,), i)))
        if targets is None:
            targets = vectors
    pred = model.prediction_head(torch.stack(preds, 1).reshape(b * s, -1))
    keys = model.target_head(targets)
    doc = torch.arange(b).repeat_interleave(s)
    return hierarchical_contrastive_loss(pred, keys, torch.arange(b * s), doc, doc).loss


def one(args) -> dict:
    import torch

    from msm.model.config import MSMModelConfig
    from msm.model.msm import MSMModel

    torch.manual_seed(0)
    cfg = MSMModelConfig(encoder=args.model, max_sentences=args.sentences, max_tokens=args.tokens,
                         memory_bank_size=0, dropout=0.0)
    model = MSMModel.from_config(cfg).to(args.device)
    batch, _ = make_batch(model.sentence_encoder.tokenizer, args.docs, args.sentences, args.tokens)
    batch = {k: v.to(args.device) for k, v in batch.items()}
    dtype = torch.bfloat16 if args.dtype == "bf16" else None

    def step():
        with torch.autocast(args.device, dtype=dtype, enabled=dtype is not None):
            loss = model(batch).loss if args.mode == "ours" else naive_loss(model, batch)
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    sec = sorted(times)[len(times) // 2]
    out = {"mode": args.mode, "docs": args.docs, "sentences": args.sentences, "tokens": args.tokens,
           "device": args.device, "dtype": args.dtype, "step_s": sec, "docs_per_s": args.docs / sec,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        params = sum(p.numel() for p in model.sentence_encoder.parameters()
                     if p.dim() > 1 and "word_embeddings" not in str(p.shape))
        n_tokens = args.docs * args.sentences * args.tokens
        flops = 6 * params * n_tokens  # fwd + bwd matmuls of the sentence encoder (doc encoder is < 1%)
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        out["mfu"] = flops / sec / peak if peak else None
    return out


def run(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", *argv], capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1", MSM_NO_PROGRESS="1"))
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="e5-small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--docs", type=int, default=8)
    p.add_argument("--sentences", type=int, default=32)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compare", default="2,8,32", help="docs,sentences,tokens of the ours-vs-naive comparison")
    p.add_argument("--mode", choices=["ours", "naive"], default="ours")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    common = ["--model", args.model, "--device", args.device, "--dtype", args.dtype, "--repeats", str(args.repeats)]
    d, s, t = args.compare.split(",")
    rows = [run(common + ["--docs", str(args.docs), "--sentences", str(args.sentences), "--tokens", str(args.tokens)])]
    small = ["--docs", d, "--sentences", s, "--tokens", t]
    ours, naive = run(common + small), run(common + small + ["--mode", "naive"])
    rows += [ours, naive]
    print(f"{'mode':6} {'docs×sent×tok':>14} {'step s':>8} {'docs/s':>8} {'peak RSS MB':>12}")
    for r in rows:
        shape = f"{r['docs']}×{r['sentences']}×{r['tokens']}"
        print(f"{r['mode']:6} {shape:>14} {r['step_s']:8.2f} {r['docs_per_s']:8.2f} {r['peak_rss_mb']:12.0f}"
              + (f"  MFU {r['mfu']:.1%}" if r.get("mfu") else ""))
    ratio = naive["step_s"] / ours["step_s"]
    print(f"naive / ours step time at {d}×{s}×{t}: {ratio:.1f}×")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "naive_over_ours": ratio, "cpu_threads": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
