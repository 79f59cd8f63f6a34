"""Text handling shared by the resolver: cleaning, language detection, tokens, typo distance.

English is matched on words, Chinese on characters (no spaces), and both become one stream of
tagged tokens so that the resolver's grammar is written once for both languages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-_]")
_CONTRACTIONS = (
    (re.compile(r"\b(it|that|what|there|here|where|who|he|she)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\b(do|does|did|is|are|was|were|could|would|should|must|ca|wo)n't\b"), r"\1 not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\b(i|you|we|they)'(re|ve|ll|d|m)\b"), r"\1"),
    (re.compile(r"'s\b"), ""),
    (re.compile(r"\b(can|could|would|will|do|did|are|thank|if)\s+u\b"), r"\1 you"),  # "can u pick up"
    (re.compile(r"(?<=[a-z0-9])\s+n\s+(?=[a-z])"), " and "),  # "grab QL-11 n drop it in the box"
    (re.compile(r"\bthats\b"), "that is"),
    (re.compile(r"(?<=\s)'?em\b(?![-'\w])"), "them"),  # "put 'em away" (an "em-12" stays)
)
_EN_TOKEN = re.compile(r"m\d{1,2}(?:x\d+(?:\.\d+)?)?|\d+(?:\.\d+)?|[a-z]+|[^\sa-z0-9]")
PUNCTUATION = frozenset(",.;:!?，。；：！？、()（）\"'“”‘’-…")
CLAUSE_BREAKS = frozenset(",.;:!?，。；：！？、")


def clean_text(text: str) -> tuple[str, bool]:
    """NFKC-normalise, drop control/format characters, collapse spaces. Returns (text, had_control)."""
    if not isinstance(text, str):
        text = str(text)
    normalised = _ANSI.sub(" ", unicodedata.normalize("NFKC", text))
    stripped = _CONTROL.sub(" ", normalised.replace("\t", " ").replace("\r", " ").replace("\n", " "))
    had_control = stripped != normalised.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return re.sub(r"\s+", " ", stripped).strip(), had_control


def detect_language(text: str) -> str:
    """ "zh" when the text holds Chinese characters, else "en" (the two languages of the cell)."""
    return "zh" if _CJK.search(text) else "en"


def normalise_english(text: str) -> str:
    """Lower-case, straighten quotes, expand contractions, split hyphenated words."""
    text = text.lower().replace("’", "'").replace("‘", "'").replace("`", "'")
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    return text


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def split_runs(text: str) -> list[tuple[bool, str]]:
    """Split into alternating runs of Chinese and non-Chinese characters: [(is_cjk, run), ...]."""
    runs: list[tuple[bool, str]] = []
    for char in text:
        cjk = bool(_CJK.match(char))
        if runs and runs[-1][0] == cjk:
            runs[-1] = (cjk, runs[-1][1] + char)
        else:
            runs.append((cjk, char))
    return runs


def english_words(text: str) -> list[str]:
    return _EN_TOKEN.findall(normalise_english(text))


@dataclass
class Token:
    """One unit of the instruction: its surface, the original spelling, and candidate readings.

    ``tags`` holds (tag, value) readings from the lexicon, e.g. ("CAT", "gear") or ("VERB", "pick");
    the resolver picks one by context. ``corrected`` is the word a typo was corrected to.
    """

    text: str
    original: str = ""
    tags: list[tuple[str, str]] = field(default_factory=list)
    corrected: str | None = None
    cjk: bool = False

    def has(self, tag: str, value: str | None = None) -> bool:
        return any(t == tag and (value is None or v == value) for t, v in self.tags)

    def value(self, tag: str) -> str | None:
        return next((v for t, v in self.tags if t == tag), None)

    @property
    def tag(self) -> str:
        return self.tags[0][0] if self.tags else "UNKNOWN"
