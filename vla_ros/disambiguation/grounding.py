"""How well one word of a referring expression fits one scene entity, and who wins.

The resolver grounds a phrase by scoring every candidate instead of requiring every word to be
understood. Words come in two kinds:

- *understood* words (a category, colour, material, thread, quantity, label, a word of some entity's
  name): the operator meant something definite by them, so a candidate that contradicts one is out,
  and when no candidate carries it the thing the operator means is not in the cell (ask with ``[]``);
- *unexplained* words (jargon, abbreviations, fillers the lexicon lacks): they may name the thing
  ("ti" for titanium, "porous" for a porosity defect, "ring" for a chainring), so a close match to a
  candidate's words is evidence for it, but a word that matches nothing is ignored, never a veto.

Candidates that satisfy every understood word are ranked by their evidence from unexplained words;
the top ones are kept only when they clearly beat the rest, otherwise all that tie stay so that the
resolver asks with exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, Levenshtein

T = TypeVar("T")

# Evidence an unexplained word gives: the candidate word it resembles most, scaled by how closely.
_FUZZY_MIN_RATIO = 80.0  # rapidfuzz ratio (0-100) for a misspelt or inflected word
_SHARED_STEM_MIN = 4  # "porous"/"porosity", "machined"/"machining": a long common beginning
_ABBREVIATION_MIN = 2  # "ti" for "titanium", "al" for "aluminium": a clear prefix of a long word
# The best candidate must beat the runner-up by this much evidence to be chosen alone.
EVIDENCE_MARGIN = 0.25


def typo_distance(a: str, b: str) -> float:
    """Edit distance for typos (rapidfuzz): dropped and extra letters cost 0.8, wrong letters 1.0,
    and a swap of two neighbours 0.8, because operators drop and swap letters more often than they
    mistype them ("bolit", "brakcet")."""
    weighted = Levenshtein.distance(a, b, weights=(4, 4, 5)) / 5.0
    swaps = Levenshtein.distance(a, b) - OSA.distance(a, b)
    return weighted if swaps <= 0 else min(weighted, 0.8 * OSA.distance(a, b))


def unexplained_word_support(word: str, entity_words: Iterable[str], typos: bool = True) -> float:
    """How strongly an unknown word points at an entity whose words are ``entity_words`` (0 to 1).

    Exact word: 1. A misspelling or inflection (rapidfuzz ratio >= 80, or a shared beginning of four
    letters or more): 0.8. An abbreviation (the word begins a much longer word: "ti", "al"), or a
    word inside a compound ("ring" in "chainring"): 0.6. Otherwise 0. ``typos=False`` for a word that
    is spelt right (a dictionary's English for a Chinese word): "cable" is then no misspelt "table"."""
    word = word.lower()
    if not word or not any(ch.isalnum() for ch in word):
        return 0.0
    best = 0.0
    words = {w.lower() for w in entity_words}
    for candidate in entity_words:
        candidate = candidate.lower()
        if not candidate:
            continue
        if candidate == word:
            return 1.0
        if len(word) >= 4 and len(candidate) >= 4:
            if typos and fuzz.ratio(word, candidate) >= _FUZZY_MIN_RATIO:
                best = max(best, 0.8)
                continue
            stem = _common_prefix(word, candidate)
            # an inflection ("threaded" / "thread"), not a longer compound ("skateboard" / "skate")
            if (
                stem >= _SHARED_STEM_MIN
                and stem >= min(len(word), len(candidate)) - 3
                and abs(len(word) - len(candidate)) <= 3
            ):
                best = max(best, 0.8)
                continue
        abbreviation = word.isalpha() and len(word) >= _ABBREVIATION_MIN and len(candidate) >= len(word) + 3
        if abbreviation and candidate.startswith(word):
            best = max(best, 0.6)
            continue
        if len(word) >= 4 and len(candidate) > len(word) and candidate.endswith(word):
            best = max(best, 0.6)  # "ring" -> "chainring", "plate" -> "nutplate"
        if (
            len(candidate) >= 3
            and len(word) >= len(candidate) + 3
            and word.startswith(candidate)
            and word[len(candidate) :] in words
        ):
            best = max(best, 0.8)  # "checkweigher" -> "check weigher": a name's two words run together
    return best


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Requirement:
    """One understood word of the phrase and the candidates that carry it (ids -> strength)."""

    word: str
    support: Mapping[str, float]


def rank_candidates(
    items: Sequence[T],
    key: Callable[[T], str],
    requirements: Sequence[Requirement],
    evidence: Mapping[str, float],
) -> list[T]:
    """The candidates the phrase picks out.

    Every understood word must be carried (a candidate that lacks one is out; when none carries one,
    nothing fits and ``[]`` comes back). Among those left, the unexplained-word ``evidence`` ranks:
    the best stay, with every candidate within :data:`EVIDENCE_MARGIN` of the best, so that a tie
    keeps all tied candidates for the question."""
    survivors = list(items)
    for requirement in requirements:
        survivors = [o for o in survivors if requirement.support.get(key(o), 0.0) > 0.0]
        if not survivors:
            return []
    if len(survivors) < 2:
        return survivors
    # Understood words that fit some candidates only partly (a fuzzy head) rank before evidence.
    strength = {
        key(o): sum(r.support.get(key(o), 0.0) for r in requirements) + evidence.get(key(o), 0.0)
        for o in survivors
    }
    best = max(strength.values())
    return [o for o in survivors if best - strength[key(o)] < EVIDENCE_MARGIN]
