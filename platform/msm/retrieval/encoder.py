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

from msm.errors import MSMError
from msm.models.resolve import read_model_meta, resolve_model
from msm.model.sentence_encoder import pool

log = logging.getLogger(__name__)
Text = str | tuple[str, str]


class Encoder:
    def __init__(self, model: str | Path, pooling: str | None = None, max_length: int = 128, batch_size: int = 64,
                 device: str | None = None, dtype: torch.dtype | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = resolve_model(str(model))
        meta = read_model_meta(self.path) if Path(self.path).is_dir() else {}
        self.pooling = pooling or meta.get("pooling", "mean")
        self.prefixes = {"query": meta.get("query_prefix", ""), "passage": meta.get("passage_prefix", "")}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if dtype is not None else (torch.bfloat16 if self.device.startswith("cuda") else None)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
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
        lengths = [len(f) + len(s or "") for f, s in zip(firsts, seconds)]
        order = np.argsort(lengths)[::-1]
        truncated = 0
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), disable=not show_progress, desc="encode",
                              unit="batch"):
                idx = order[start:start + self.batch_size]
                a = [firsts[i] for i in idx]
                b = [seconds[i] for i in idx]
                pair = b[0] is not None
                enc = self.tokenizer(a, b if pair else None, padding=True, truncation="longest_first" if pair else True,
                                     max_length=self.max_length, return_tensors="pt",
                                     )
                if not pair:
                    full = self.tokenizer(a, add_special_tokens=True, truncation=False)["input_ids"]
                    truncated += sum(len(x) > self.max_length for x in full)
                enc = {k: v.to(self.device) for k, v in enc.items()}
                with torch.autocast(self.device.split(":")[0], dtype=self.dtype, enabled=self.dtype is not None):
                    hidden = self.model(**enc).last_hidden_state
                vec = pool(hidden.float(), enc["attention_mask"], self.pooling)
                out[idx] = torch.nn.functional.normalize(vec, dim=-1).cpu().numpy()
        if truncated:
            self.truncated += truncated
            log.warning("%d of %d texts were longer than %d tokens and were truncated", truncated, len(texts),
                        self.max_length)
        return out
