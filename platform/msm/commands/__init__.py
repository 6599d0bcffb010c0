"""CLI verbs, one module each (see ``msm.cli``), and the options every verb spells the same way.

=====================  ==================================================================================
``--out LOCATION``     where the verb writes: a local folder or a URI (``s3://``, ``gs://``, ``file://``);
                       for a verb with a config file it sets the config's own key (``output_dir``,
                       ``run.output_dir``), which stays the YAML spelling
``--overwrite``        replace this verb's own output made with other settings (never anything else:
                       :mod:`msm.output`)
``--resume DIR``       continue a run or sweep from its folder, with its saved config (pretrain, finetune, tune)
``KEY=VALUE``          overrides of the config file (mine, pretrain, finetune, tune; ``msm submit`` passes them to
                       the job); ``eval`` and ``index`` have no config file: their settings are flags
``--debug``            the traceback of an unexpected error (also ``MSM_DEBUG=1``)
``--verbose``          Ray's, Ray Data's and transformers' own logs and progress bars
=====================  ==================================================================================
"""

from __future__ import annotations

import argparse
import sys

from msm.config import merge, parse_overrides


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {value}")
    return value


def add_out(p: argparse.ArgumentParser, key: str | None = None, required: bool = False) -> None:
    """``--out`` and ``--overwrite``; ``key``: the config key ``--out`` sets."""
    sets = f"; sets {key}" if key else ""
    p.add_argument("--out", metavar="LOCATION", required=required, default=None,
                   help=f"where the output goes: a local folder or a URI (s3://, gs://, file://){sets}"
                        + ("" if required else " (default: the config's)"))
    p.add_argument("--overwrite", action="store_true",
                   help="replace this verb's own output made with other settings; a folder holding anything else "
                        "is never touched (default: reuse the same settings' output, refuse other settings')")


def add_overrides(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", default=[],
                   help=f"config overrides, dotted keys with YAML values, e.g. {example} (default: none)")


def overrides_with_out(args: argparse.Namespace, key: str) -> dict:
    """The ``KEY=VALUE`` overrides as a nested dict, with ``key`` set to ``--out`` when given (a string as typed:
    it wins over an override of the same key)."""

    found = parse_overrides(args.overrides)
    if getattr(args, "out", None):
        node: dict = {}
        top = node
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = args.out
        found = merge(found, top)
    return found


def deprecated(old: str, new: str) -> None:
    """Say once, on stderr, that ``old`` still works this release and ``new`` is the spelling to use."""
    print(f"msm: note: {old} is deprecated and will be removed in the next release; use {new}", file=sys.stderr)
