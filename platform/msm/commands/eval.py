"""``msm eval --model M --tasks lareqa,tatoeba,mrtydi,xor_retrieve,mewsli_x --data-dir DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from msm.eval.run import run_eval
    from msm.model.smoke import default_data_dir

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if data_dir is None:
        from msm.errors import MSMError

        raise MSMError("no data directory: pass --data-dir (holding one folder per task, see docs/evaluation.md) "
                       "or set MSM_DATA_DIR")
    run_eval(args.model, args.tasks.split(","), data_dir, Path(args.out) if args.out else None,
             args.langs.split(",") if args.langs else None, args.max_queries, args.batch_size, args.max_length)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on retrieval tasks "
                                    "(lareqa, tatoeba, mrtydi, xor_retrieve, mewsli_x)")
    p.add_argument("--model", required=True, help="HF folder, MSM checkpoint, hub id or 'e5-small'")
    p.add_argument("--tasks", default="lareqa,tatoeba")
    p.add_argument("--data-dir", default=None,
                   help="folder with xquad-r/, tatoeba/, mrtydi/, xor_retrieve/, mewsli_x/ (default: $MSM_DATA_DIR)")
    p.add_argument("--out", default=None, help="write results.md/results.json here")
    p.add_argument("--langs", default=None, help="comma-separated subset of languages")
    p.add_argument("--max-queries", type=int, default=None, help="per language (quick runs)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=256)
    p.set_defaults(func=_run)
