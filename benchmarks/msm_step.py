"""One MSM training step (forward + backward) on real documents: length buckets vs padding every sentence to T.

Batches: consecutive NTREX-128 sentences cut into blocks of S, the languages taking turns across the B blocks,
tokenised to T with their real lengths; both paths get the same batches. ``padded`` (``length_buckets: 0``) runs
the sentence encoder on [K, T]; ``buckets`` sorts the K sentences by length into ``--buckets`` groups, each cut
to its own longest. Each measurement runs in a fresh subprocess; peak memory = its max RSS (ru_maxrss); the
1-minute load average is recorded before and after; the process's CPU time per step beside the wall-clock
time (on a shared machine it is the steadier of the two).

    python benchmarks/msm_step.py                       # CPU, e5-small, 4×16×64 and 8×32×64
    python benchmarks/msm_step.py --device cuda --dtype bf16 --shapes 16,32,64   # GPU: tokens/s and MFU
    python benchmarks/msm_step.py --naive               # our one-encoding-per-sentence step vs S re-encodings

``--naive`` (→ results/msm_step_naive.json): ours encodes every sentence once and builds the S masked copies only
in the 2-layer document encoder; the naive formulation re-runs the sentence encoder for every masked copy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from harness import write_results, run_child

RESULTS = Path(__file__).parent / "results" / "msm_step.json"
NAIVE_RESULTS = RESULTS.with_name("msm_step_naive.json")
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16


def make_batch(tokenizer, docs: int, sentences: int, tokens: int, full_length: bool = False):
    from msm.model.batching import collate
    from msm.smoke import NTREX_LANGS, default_data_dir, load_documents

    texts, langs, _ = load_documents(default_data_dir(), max_docs_per_lang=200)
    stream = {lang: [s for doc, dl in zip(texts, langs) if dl == lang for s in doc] for lang in NTREX_LANGS}
    order = [NTREX_LANGS[i % len(NTREX_LANGS)] for i in range(docs)]
    blocks = [stream[lang][(i // len(NTREX_LANGS)) * sentences:(i // len(NTREX_LANGS) + 1) * sentences]
              for i, lang in enumerate(order)]
    batch = collate(blocks, [NTREX_LANGS.index(lang) for lang in order], tokenizer, sentences, tokens)
    if full_length:
        batch["attention_mask"][:] = 1  # every sentence at T: the worst case the budget allows
    return batch


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


def encoder_share(model, batch, buckets: int, args) -> float:
    """Median seconds of the sentence encoder's base model alone (forward + backward of its token states, no MLM
    head, no document encoder): the part of the step that padding inflates."""
    import torch

    smask = batch["sentence_mask"]
    ids, mask = batch["input_ids"][smask], batch["attention_mask"][smask]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.sentence_encoder.token_states(ids, mask, buckets).sum().backward()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def one(args) -> dict:
    import torch

    from msm.model.config import MSMModelConfig
    from msm.model.msm import MSMModel
    from msm.model.sentence_encoder import length_groups

    torch.manual_seed(0)
    cfg = MSMModelConfig(encoder=args.model, max_sentences=args.sentences, max_tokens=args.tokens,
                         memory_bank_size=0, dropout=0.0, length_buckets=args.buckets if args.mode == "buckets" else 0)
    model = MSMModel.from_config(cfg).to(args.device)
    batch = make_batch(model.sentence_encoder.tokenizer, args.docs, args.sentences, args.tokens,
                       full_length=args.mode in ("ours", "naive"))
    batch = {k: v.to(args.device) for k, v in batch.items()}
    real = batch["attention_mask"][batch["sentence_mask"]]
    dtype = torch.bfloat16 if args.dtype == "bf16" else None

    def step():
        with torch.autocast(args.device, dtype=dtype, enabled=dtype is not None):
            loss = naive_loss(model, batch) if args.mode == "naive" else model(batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu = [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    sec = sorted(times)[len(times) // 2]
    encoder_s = encoder_share(model, batch, cfg.length_buckets, args) if args.mode in ("padded", "buckets") else None
    real_tokens = int(real.sum())
    encoded = (sum(len(idx) * width for idx, width in length_groups(real.sum(1).tolist(), args.buckets))
               if args.mode == "buckets" else real.numel())
    out = {"mode": args.mode, "docs": args.docs, "sentences": args.sentences, "tokens": args.tokens,
           "buckets": args.buckets if args.mode == "buckets" else 0, "device": args.device, "dtype": args.dtype,
           "step_s": sec, "step_s_all": times, "encoder_s": encoder_s, "cpu_s": sorted(cpu)[len(cpu) // 2], "docs_per_s": args.docs / sec,
           "real_tokens": real_tokens,
           "encoded_tokens": encoded, "real_tokens_per_s": real_tokens / sec,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        params = sum(p.numel() for p in model.sentence_encoder.parameters()
                     if p.dim() > 1 and "word_embeddings" not in str(p.shape))
        flops = 6 * params * real_tokens  # useful fwd + bwd matmuls of the sentence encoder (doc encoder < 1%)
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        out["mfu"] = flops / sec / peak if peak else None
    return out


def run(argv: list[str]) -> dict:
    return run_child(__file__, ["--one", *argv])


def table(rows: list[dict]) -> None:
    print(f"{'mode':8} {'docs×sent×tok':>14} {'step s':>8} {'CPU s':>7} {'real tok/s':>10} {'encoded/real':>12} "
          f"{'peak RSS MB':>12} {'load 1m':>12}")
    for r in rows:
        shape = f"{r['docs']}×{r['sentences']}×{r['tokens']}"
        load = "→".join(f"{x:.1f}" for x in r["load_avg_1m"])
        print(f"{r['mode']:8} {shape:>14} {r['step_s']:8.2f} {r['cpu_s']:7.1f} {r['real_tokens_per_s']:10.0f} "
              f"{r['encoded_tokens'] / r['real_tokens']:12.2f} {r['peak_rss_mb']:12.0f} {load:>12}"
              + (f"  MFU {r['mfu']:.1%}" if r.get("mfu") else ""), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="e5-small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--shapes", default="4,16,64;8,32,64", help="docs,sentences,tokens; ... (padded vs buckets)")
    p.add_argument("--buckets", type=int, default=6, help="length groups of the bucketed path (the default's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--naive", action="store_true", help="ours vs naive at --compare instead (full-length sentences)")
    p.add_argument("--compare", default="2,8,32", help="docs,sentences,tokens of the ours-vs-naive comparison")
    p.add_argument("--docs", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--sentences", type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["padded", "buckets", "ours", "naive"], default="buckets", help=argparse.SUPPRESS)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    common = ["--model", args.model, "--device", args.device, "--dtype", args.dtype, "--repeats", str(args.repeats),
              "--buckets", str(args.buckets)]
    RESULTS.parent.mkdir(exist_ok=True)
    if args.naive:
        d, s, t = args.compare.split(",")
        small = common + ["--docs", d, "--sentences", s, "--tokens", t]
        ours, naive = run(small + ["--mode", "ours"]), run(small + ["--mode", "naive"])
        table([ours, naive])
        ratio = naive["step_s"] / ours["step_s"]
        print(f"naive / ours step time at {d}×{s}×{t}: {ratio:.1f}×")
        write_results(NAIVE_RESULTS, {"rows": [ours, naive], "naive_over_ours": ratio, "cpu_threads": os.cpu_count()})
        return
    # one entry per shape, kept across invocations (a busy machine may need one shape per run)
    saved = json.loads(RESULTS.read_text()).get("shapes", {}) if RESULTS.is_file() else {}
    for shape in args.shapes.split(";"):
        d, s, t = shape.split(",")
        argv = common + ["--docs", d, "--sentences", s, "--tokens", t]
        padded, buckets = run(argv + ["--mode", "padded"]), run(argv + ["--mode", "buckets"])
        table([padded, buckets])
        x = {"wall": padded["step_s"] / buckets["step_s"], "cpu": padded["cpu_s"] / buckets["cpu_s"]}
        # Amdahl: the rest of the step (MLM head over the 250k vocabulary, document encoder, loss) does not shrink
        rest = padded["step_s"] - padded["encoder_s"]
        x["encoder_only"] = padded["encoder_s"] / buckets["encoder_s"]
        x["encoder_share_padded"] = padded["encoder_s"] / padded["step_s"]
        x["linear_estimate_no_padding"] = padded["step_s"] / (rest + padded["encoder_s"] * padded["real_tokens"]
                                                               / padded["encoded_tokens"])
        print(f"padded / buckets at {d}×{s}×{t}: {x['wall']:.2f}× wall-clock step time, {x['cpu']:.2f}× process "
              f"CPU time; sentence encoder alone {x['encoder_only']:.2f}× (it is {x['encoder_share_padded']:.0%} of "
              f"the padded step; were its time proportional to its tokens, no padding at all would make the step "
              f"{x['linear_estimate_no_padding']:.2f}× faster)", flush=True)
        key = f"{d}x{s}x{t}-buckets{args.buckets}"
        saved[key] = {"rows": [padded, buckets], "padded_over_buckets": x, "cpu_threads": os.cpu_count(),
                                 "command": " ".join(["python", "benchmarks/msm_step.py", *sys.argv[1:]])}
        write_results(RESULTS, {"shapes": saved})


if __name__ == "__main__":
    main()
