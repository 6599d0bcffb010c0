"""``Encoder``: texts → L2-normalised vectors with any HF encoder folder, hub id, alias or MSM checkpoint.

Length-sorted batches (minimal padding), ``torch.inference_mode``, bf16 autocast on GPU, prefixes from the
model's ``msm_model.json`` (e5: "query: " / "passage: ").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from msm.encoders.resolve import read_model_meta, resolve_model
from msm.encoders.tokenizer import load_tokenizer
from msm.errors import MSMError
from msm.model.sentence_encoder import pool

log = logging.getLogger(__name__)
Text = str | tuple[str, str]


class Encoder:
    def __init__(self, model: str | Path, pooling: str | None = None, max_length: int = 128, batch_size: int = 64,
                 device: str | None = None, dtype: torch.dtype | None = None) -> None:
        from transformers import AutoModel  # lazy: transformers


        self.path = resolve_model(str(model))
        meta = read_model_meta(self.path) if Path(self.path).is_dir() else {}
        self.pooling = pooling or meta.get("pooling", "mean")
        self.prefixes = {"query": meta.get("query_prefix", ""), "passage": meta.get("passage_prefix", "")}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if dtype is not None else (torch.bfloat16 if self.device.startswith("cuda") else None)
        try:
            self.tokenizer = load_tokenizer(self.path)
            self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise MSMError(f"{model}: not a loadable model ({exc}); pass an HF model folder, an MSM checkpoint "
                           "or 'e5-small'") from exc
        self.max_length = min(max_length, self.tokenizer.model_max_length)
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)
        self.truncated = 0

    def encode(self, texts: Sequence[Text], prefix: str | None = None, kind: Literal["query", "passage"] = "passage",
               show_progress: bool = False) -> np.ndarray:
        """[n, dim] float32, L2-normalised. A text may be a (sentence, context) pair."""
        if prefix is None:
            prefix = self.prefixes[kind]
        firsts, seconds = [], []
        for i, t in enumerate(texts):
            first, second = (t if isinstance(t, tuple) else (t, None))
            if not isinstance(first, str) or not first.strip():
                raise MSMError(f"text {i} is empty; drop empty queries/passages before encoding")
            firsts.append(prefix + first)
            seconds.append(second)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if seconds[0] is None:
            batches = self._token_batches(firsts)
        else:
            batches = self._pair_batches(firsts, seconds)
        with torch.inference_mode():
            for idx, enc in tqdm(batches, disable=not show_progress, desc="encode", unit="batch"):
                enc = {k: v.to(self.device) for k, v in enc.items()}
                with torch.autocast(self.device.split(":")[0], dtype=self.dtype, enabled=self.dtype is not None):
                    hidden = self.model(**enc).last_hidden_state
                vec = pool(hidden.float(), enc["attention_mask"], self.pooling)
                out[idx] = torch.nn.functional.normalize(vec, dim=-1).cpu().numpy()
        return out

    def _token_batches(self, texts: list[str]) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Tokenise once, truncate (counting), sort by token length, pad each batch to its own longest."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        truncated = sum(len(x) > self.max_length for x in ids)
        ids = [x if len(x) <= self.max_length else x[: self.max_length - 1] + x[-1:] for x in ids]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        pad = self.tokenizer.pad_token_id
        batches = []
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            width = len(ids[idx[0]])
            input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            batches.append((idx, {"input_ids": input_ids, "attention_mask": mask}))
        if truncated:
            self.truncated += truncated
            log.warning("%d of %d texts were longer than %d tokens and were truncated", truncated, len(texts),
                        self.max_length)
        return batches

    def _pair_batches(self, firsts: list[str], seconds: list[str]) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """(sentence, context) pairs, truncated longest-first to ``max_length``, sorted by character length."""
        order = np.argsort([-(len(f) + len(s)) for f, s in zip(firsts, seconds)], kind="stable")
        batches = []
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([firsts[i] for i in idx], [seconds[i] for i in idx], padding=True,
                                 truncation="longest_first", max_length=self.max_length, return_tensors="pt")
            batches.append((idx, dict(enc)))
        return batches

