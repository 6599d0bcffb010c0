"""``msm experiment results|protocol [OPTIONS]``: the research drivers of :mod:`msm.experiments`
(``make results``, ``make protocol``); ``msm experiment results --help`` lists each one's own options."""

from __future__ import annotations

import argparse

from msm.experiments import protocol, results


def _run(args: argparse.Namespace) -> int:
    return (results if args.which == "results" else protocol).main(args.args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="research drivers: MSM variants vs the start model (results), the paper's "
                                          "fine-tuning protocol on XQuAD-R (protocol)")
    p.add_argument("which", choices=["results", "protocol"],
                   help="results: make results (docs/RESULTS.md); protocol: make protocol")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="...",
                   help="the experiment's own options: msm experiment results --help (default: its defaults)")
    p.set_defaults(func=_run)
