"""Peak memory of the MLM loss: logits at the masked positions only (``MSMModel`` today) vs at every token.

The tiny random XLM-R (hidden 32, 2 layers) keeps the real 250,002-piece vocabulary, so the vocabulary projection
is the whole cost, as at the paper's shape. One forward + backward of the sentence encoder's MLM loss on
``--docs × --sentences × --tokens`` full-length tokens (15 % masked), each mode in a fresh subprocess; peak memory is
that process's RSS sampled every millisecond (CPU) or ``torch.cuda.max_memory_allocated`` (``--device cuda``), minus what it held after
loading the model and the batch. The paper's shape is 8 documents × 32 sentences × 64 tokens = 16,384 tokens per
GPU; the default here (4 × 32 × 16 = 2,048 tokens) fits this 24 GiB machine in both modes, and the cost of the
full logits is linear in tokens.

    python benchmarks/mlm_memory.py                      # CPU, 2,048 tokens
    python benchmarks/mlm_memory.py --device cuda --docs 8 --sentences 32 --tokens 64   # 16k tokens, a GPU
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from harness import load_average, run_child, write_results

RESULTS = Path(__file__).parent / "results" / "mlm_memory.json"


def one(args: argparse.Namespace) -> dict:
    import psutil
    import torch
    import torch.nn.functional as F

    from msm.losses.mlm import mask_tokens, mlm_loss
    from msm.model.sentence_encoder import SentenceEncoder
    from msm.encoders.resolve import resolve_model

    enc = SentenceEncoder(resolve_model("tiny-random"), "mean", with_mlm_head=True).to(args.device)
    n, t = args.docs * args.sentences, args.tokens
    ids = torch.randint(5, enc.model.config.vocab_size, (n, t), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    special = torch.zeros_like(ids, dtype=torch.bool)
    ids, labels = mask_tokens(ids, mask, special, enc.tokenizer.mask_token_id, enc.model.config.vocab_size, 0.15,
                              torch.Generator().manual_seed(1))
    ids, mask, labels = ids.to(args.device), mask.to(args.device), labels.to(args.device)
    proc, peak_rss, done = psutil.Process(), [0], threading.Event()
    base = proc.memory_info().rss

    def sample() -> None:  # RSS every millisecond while the loss runs (ru_maxrss would include loading)
        while not done.is_set():
            peak_rss[0] = max(peak_rss[0], proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    if args.mode == "masked":
        masked = labels != -100
        _, logits = enc(ids, mask, masked)
        loss = mlm_loss(logits, labels[masked])
    else:  # every token's logits, as before (the HF model's own forward)
        logits = enc.model(input_ids=ids, attention_mask=mask).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    done.set()
    sampler.join()
    peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else peak_rss[0]
    return {"mode": args.mode, "tokens": n * t, "masked_tokens": int((labels != -100).sum()),
            "peak_extra_mib": round((peak - base) / 2**20, 1), "loss": round(float(loss), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--sentences", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", choices=["masked", "full"], help="(internal) measure one mode in this process")
    args = ap.parse_args(argv)
    if args.mode:
        print(json.dumps(one(args)))
        return 0
    rows = []
    for mode in ("full", "masked"):
        cmd = [sys.executable, __file__, "--mode", mode, "--docs", str(args.docs), "--sentences",
               str(args.sentences), "--tokens", str(args.tokens), "--device", args.device]
        rows.append(run_child(__file__, cmd[2:]))
    full, masked = rows
    print(f"{'mode':>7} {'tokens':>7} {'masked':>7} {'peak extra MiB':>15} {'loss':>8}")
    for r in rows:
        print(f"{r['mode']:>7} {r['tokens']:7d} {r['masked_tokens']:7d} {r['peak_extra_mib']:15.1f} {r['loss']:8.4f}")
    ratio = full["peak_extra_mib"] / max(masked["peak_extra_mib"], 1e-9)
    print(f"full / masked peak: {ratio:.1f}x; same loss: {abs(full['loss'] - masked['loss']) < 1e-3}")
    write_results(RESULTS, {"device": args.device, "args": vars(args), "rows": rows,
                            "full_over_masked": round(ratio, 2), "load_average": load_average()})
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
