"""Mining throughput: sentences/s end to end and per stage of the Ray pipeline, 1 and 2 embedding actors, peak memory.

Runs ``msm.data.pipeline.mine`` on an NTREX subset on a local Ray cluster; peak memory is the largest summed RSS
of this process and all its descendants (raylet, Ray workers), sampled every 0.2 s.

    python benchmarks/mining_speed.py --model e5-small    # writes benchmarks/results/mining_speed.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from msm.data.config import InputConfig, MineConfig
from msm.data.pipeline import mine
from harness import write_results


class PeakRSS:
    """Largest summed RSS of this process tree while active."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5-small",
                    help="encoder alias/path; 'random-e5-shape' = a random model with multilingual-e5-small's shape "
                         "(XLM-R vocab, 384 hidden, 12 layers, 12 heads, 1536 FFN): same compute, for timing only")
    ap.add_argument("--langs", default="eng,deu,rus,zho-CN", help="NTREX language tags")
    ap.add_argument("--max-documents", type=int, default=40, help="per language")
    ap.add_argument("--pool-sizes", default="1,2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mining_speed.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    ray.init(address="local", num_cpus=2, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = []
    print(f"{'workers':>7} {'docs':>5} {'sents':>6} {'total s':>8} {'sent/s':>7} {'read+prep+embed':>16} "
          f"{'embed/s':>8} {'count':>6} {'pair':>6} {'align':>6} {'write':>6} {'peak GiB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model == "random-e5-shape":
            from msm.encoders.tiny import build_tiny_model

            model = str(build_tiny_model(f"{tmp}/e5-shape", hidden_size=384, num_layers=12, num_heads=12,
                                         intermediate_size=1536, max_position_embeddings=514))
        for pool in [int(p) for p in args.pool_sizes.split(",")]:
            cfg = MineConfig(inputs=[InputConfig(kind="ntrex", path="ntrex", langs=args.langs.split(","),
                                                 max_documents=args.max_documents)],
                             data_dir=args.data_dir, output_dir=f"{tmp}/out{pool}")
            cfg.embed.model, cfg.embed.pool_size, cfg.embed.batch_size = model, pool, args.batch_size
            with PeakRSS() as mem:
                manifest = mine(cfg, log=lambda *_: None)
            t, n = manifest["timings_s"], manifest["counts"]["sentences"]
            row = {"workers": pool, "documents": manifest["counts"]["kept"], "sentences": n, "timings_s": t,
                   "sentences_per_s": round(n / t["total"], 1), "embed_sentences_per_s": round(n / t["read_prepare_embed"], 1),
                   "peak_rss_gib": round(mem.peak / 2**30, 2)}
            rows.append(row)
            print(f"{pool:7d} {row['documents']:5d} {n:6d} {t['total']:8.1f} {row['sentences_per_s']:7.1f} "
                  f"{t['read_prepare_embed']:16.1f} {row['embed_sentences_per_s']:8.1f} {t['count']:6.1f} {t['pair']:6.2f} "
                  f"{t['align']:6.2f} {t['write']:6.2f} {row['peak_rss_gib']:8.2f}", flush=True)
    ray.shutdown()
    write_results(args.out, {"model": args.model, "args": vars(args), "cpus": os.cpu_count(), "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
