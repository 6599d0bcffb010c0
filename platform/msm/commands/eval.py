"""``msm eval --model M --tasks lareqa,tatoeba,mrtydi,xor_retrieve,mewsli_x [--data-dir DIR] [--out LOCATION]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from msm.commands import add_out, positive_int
from msm.encoders.cache import default_cache_dir
from msm.errors import MSMError


def _run(args: argparse.Namespace) -> int:
    from msm.data.readers import default_data_dir  # lazy: pyarrow
    from msm.eval.run import run_eval  # lazy: pyarrow

    from msm.uri import local_copy  # lazy: pyarrow

    # at a URI (a cluster job: the data in object storage), a local copy cached per machine
    data_dir = (local_copy(args.data_dir, default_cache_dir() / "data", "evaluation data", "pass the folder holding "
                           "one folder per task (see docs/evaluation.md)") if args.data_dir else default_data_dir())
    if data_dir is None or not Path(data_dir).is_dir():
        raise MSMError(f"--data-dir {data_dir}: not a folder; pass the folder holding one folder per task "
                       "(see docs/evaluation.md) or set MSM_DATA_DIR")
    langs = [x.strip() for x in args.langs.split(",") if x.strip()] if args.langs else None
    run_eval(args.model, [t.strip() for t in args.tasks.split(",") if t.strip()], Path(data_dir), args.out, langs,
             args.max_queries, args.batch_size, args.max_length, overwrite=args.overwrite,
             data_source=args.data_dir if args.data_dir and "://" in args.data_dir else None)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on retrieval tasks "
                                    "(lareqa, tatoeba, mrtydi, xor_retrieve, mewsli_x)")
    p.add_argument("--model", required=True, help="HF folder (or its URI), MSM checkpoint, hub id or 'e5-small'")
    p.add_argument("--tasks", default="lareqa,tatoeba", help="comma-separated (default: lareqa,tatoeba)")
    p.add_argument("--data-dir", default=None,
                   help="folder (or URI) with xquad-r/, tatoeba/, mrtydi/, xor_retrieve/, mewsli_x/ (default: "
                        "$MSM_DATA_DIR or ../shared/data)")
    add_out(p)
    p.add_argument("--langs", default=None, help="comma-separated subset of languages every task has (default: all)")
    p.add_argument("--max-queries", type=positive_int, default=None, help="per language, quick runs (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="texts per encoder batch (default: 64)")
    p.add_argument("--max-length", type=positive_int, default=256, help="tokens per text (default: 256)")
    p.set_defaults(func=_run)
