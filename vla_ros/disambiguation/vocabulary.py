"""The cell's vocabulary: every word the resolver understands, loaded from YAML.

Integrators extend the shipped ``config/disambiguation.yaml`` with their own files (new part names,
jargon, unsafe phrases, Chinese synonyms) instead of editing code; files are merged in order, lists
by union and scalars by override. The loader validates everything up front so that a typo in a YAML
file fails at start-up with the file, the key and what to write instead, not mid-shift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.errors import UserInputError

# Lexicon tag of each concept section, and the concept names each section may use (None = any).
CONCEPT_SECTIONS: dict[str, tuple[str, frozenset[str] | None]] = {
    "actions": (
        "VERB",
        frozenset({"pick", "put", "move", "take", "push", "go", "put_away", "scrap", "ship"}),
    ),
    "object_categories": ("CAT", None),
    "object_kinds": ("KIND", None),
    "location_categories": ("LOCCAT", None),
    "roles": ("ROLE", None),
    "name_words": ("NAME", None),
    "colors": ("COLOR", None),
    "materials": ("MATERIAL", None),
    "sizes": ("SIZE", None),
    "superlatives": ("SUPER", None),
    "directions": ("DIR", frozenset({"left", "right", "forward", "backward", "up", "down"})),
    "prepositions": ("PREP", frozenset({"target", "locative", "toward", "from"})),
    "relations": ("REL", frozenset({"near"})),
    "markers": ("MARK", frozenset({"again", "same", "too", "other", "remaining", "previous"})),
    "ordinals": ("ORD", None),
    "numbers": ("NUMWORD", None),
}
LIST_SECTIONS: dict[str, str] = {
    "stop": "STOP",
    "home": "HOME",
    "generic_objects": "GENERIC",
    "self_words": "SELF",
    "person_words": "PERSON",
    "pronouns": "PRON",
    "determiners": "DET",
    "conjunctions": "CONJ",
    "fillers": "FILLER",
    "negations": "NEG",
}
# Position and size order are built in; any numeric scene attribute is named with its unit
# (``length_mm``, ``mass_g``) or as a family with any unit (``mass_*``, ``diameter_*``).
SUPERLATIVE_ATTRIBUTES = frozenset({"size", "x", "y", "distance"})
_NUMERIC_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:\*|mm|cm|m|g|kg|ml|l|n|nm|deg|v|mah|wh)$")


def _superlative_attributes(value: Any) -> tuple[str, ...] | None:
    """An attribute or a preference list of them (first one the candidates carry wins); None if invalid."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        return None
    out = tuple(str(n).strip().lower() for n in names)
    if all(n in SUPERLATIVE_ATTRIBUTES or _NUMERIC_ATTRIBUTE.match(n) for n in out):
        return out
    return None


LANGUAGES = ("en", "zh")
_SCALAR_SECTIONS = {
    "limits": {"max_chars": int, "max_history_turns": int},
    "spatial": {
        "on_location_radius_m": float,
        "side_margin_m": float,
        "near_margin_m": float,
        "size_order": list,
    },
    "typo": {"min_word_length": int, "max_distance_short": float, "max_distance_long": float},
}
KNOWN_SECTIONS = (
    frozenset(CONCEPT_SECTIONS)
    | frozenset(LIST_SECTIONS)
    | frozenset(_SCALAR_SECTIONS)
    | {
        "version",
        "unsafe",
        "instructions",
        "glossary",
    }
)


# Placeholders: {object} ("the red gear"), {target} ("the left bin"), {preposition} (in/on, by the
# place's category), {direction} ("to the left", "forward").
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "pick_place": "pick up {object} and place it {preposition} {target}",
    "pick": "pick up {object}",
    "place": "place {object} {preposition} {target}",
    "push": "push {object} {direction}",
    "move_to": "move to {target}",
    # move_to whose target is a part rather than a place ("go over the green bracket").
    "move_to_part": "move above {target}",
    "home": "return to the home position",
    "stop": "stop",
}
_PLACEHOLDERS = frozenset({"object", "target", "preposition", "direction"})


def _instructions(body: Any, source: str) -> dict[str, str]:
    if not isinstance(body, Mapping):
        raise VocabularyError(
            f"{source}: instructions must map actions to templates like 'put {{object}} ...'"
        )
    out = dict(DEFAULT_INSTRUCTIONS)
    for action, template in body.items():
        if action not in DEFAULT_INSTRUCTIONS:
            raise VocabularyError(
                f"{source}: instructions.{action} is not an action; use {', '.join(DEFAULT_INSTRUCTIONS)}"
            )
        names = set(re.findall(r"{(\w*)}", str(template)))
        if not isinstance(template, str) or names - _PLACEHOLDERS:
            raise VocabularyError(
                f"{source}: instructions.{action} may only use {{object}}, {{target}}, {{preposition}}, "
                f"{{direction}}; got {template!r}"
            )
        out[action] = template
    return out


def _glossary(body: Any, source: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(body, Mapping):
        raise VocabularyError(f"{source}: glossary must map terms to lists of English words")
    out: dict[str, tuple[str, ...]] = {}
    for term, words in body.items():
        if not isinstance(term, str) or not term.strip():
            raise VocabularyError(f"{source}: glossary key {term!r} must be a Chinese or English term")
        if isinstance(words, str):
            words = [words]
        if (
            not isinstance(words, list)
            or not words
            or not all(isinstance(w, str) and w.strip() for w in words)
        ):
            raise VocabularyError(f"{source}: glossary.{term} must be a non-empty list of English words")
        key = term.strip() if any("\u4e00" <= ch <= "\u9fff" for ch in term) else term.strip().lower()
        out[key] = tuple(w.strip().lower() for w in words)
    return out


class VocabularyError(UserInputError, ValueError):
    """A vocabulary YAML file is malformed; the message names the file, the key and the fix."""


def default_vocabulary_path() -> Path:
    """The shipped vocabulary: next to the sources in a checkout, else in the installed share dir."""
    env = os.environ.get("VLA_ROS_DISAMBIGUATION_VOCABULARY")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "config" / "disambiguation.yaml")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "vla_ros" / "config" / "disambiguation.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise VocabularyError(
        "config/disambiguation.yaml not found (looked in: "
        + ", ".join(str(p) for p in candidates)
        + "); set VLA_ROS_DISAMBIGUATION_VOCABULARY to its path or pass the file explicitly"
    )


def merge_vocabulary_dicts(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Lists are united (order kept), mappings merged recursively, scalars overridden by ``extra``."""
    out: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if key in out and isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge_vocabulary_dicts(out[key], value)
        elif key in out and isinstance(out[key], list) and isinstance(value, list):
            merged = list(out[key])
            merged.extend(v for v in value if v not in merged)
            out[key] = merged
        else:
            out[key] = value
    return out


def _phrases(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise VocabularyError(f"{where} must be a list of phrases, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool):
            raise VocabularyError(
                f"{where}[{i}] was read as {item!r}: YAML turns bare on/off/yes/no into booleans, so quote it"
            )
        if not isinstance(item, (str, int, float)):
            raise VocabularyError(f"{where}[{i}] must be a phrase (string), got {item!r}")
        text = str(item).strip()
        if not text:
            raise VocabularyError(f"{where}[{i}] is empty: remove it")
        out.append(text)
    return tuple(out)


@dataclass(frozen=True)
class UnsafeRule:
    """A family of refused requests: regexes per language and the reason told to the operator."""

    reason: str
    patterns: Mapping[str, tuple[re.Pattern[str], ...]]
    reason_zh: str = ""


@dataclass(frozen=True)
class Vocabulary:
    """Validated vocabulary. ``concepts[section][name]`` holds ``{"en": (...), "zh": (...), ...}``."""

    concepts: Mapping[str, Mapping[str, Mapping[str, Any]]]
    lists: Mapping[str, Mapping[str, tuple[str, ...]]]
    unsafe: tuple[UnsafeRule, ...]
    max_chars: int = 300
    max_history_turns: int = 8
    on_location_radius_m: float = 0.1
    side_margin_m: float = 0.05
    near_margin_m: float = 0.05
    size_order: tuple[str, ...] = ("small", "medium", "large")
    typo_min_word_length: int = 3
    typo_max_distance_short: float = 1.0
    typo_max_distance_long: float = 2.0
    # How the forwarded command is worded, per action: it must match the deployed policy's training data.
    instructions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTRUCTIONS))
    # Chinese shop-floor terms -> English words, most common first: the technical words CC-CEDICT
    # lacks (弯头 "elbow", 阀杆 "valve stem"). Read like the dictionary's senses, and before them.
    glossary: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    _lexicon_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Vocabulary:
        if not isinstance(data, Mapping):
            raise VocabularyError(f"{source}: top level must be a mapping of sections")
        unknown = sorted(set(data) - KNOWN_SECTIONS)
        if unknown:
            raise VocabularyError(
                f"{source}: unknown section(s) {', '.join(unknown)}; known sections are "
                f"{', '.join(sorted(KNOWN_SECTIONS))}"
            )
        concepts: dict[str, dict[str, dict[str, Any]]] = {}
        for section, (_tag, allowed) in CONCEPT_SECTIONS.items():
            body = data.get(section) or {}
            if not isinstance(body, Mapping):
                raise VocabularyError(
                    f"{source}: {section} must map concept names to {{en: [...], zh: [...]}}"
                )
            concepts[section] = {}
            for name, entry in body.items():
                where = f"{source}: {section}.{name}"
                name = str(name).strip().lower()
                if allowed is not None and name not in allowed:
                    raise VocabularyError(
                        f"{where}: unknown name; {section} may only use {', '.join(sorted(allowed))} "
                        "(add synonyms to one of those instead)"
                    )
                if not isinstance(entry, Mapping):
                    raise VocabularyError(f"{where} must be a mapping like {{en: [...], zh: [...]}}")
                bad = sorted(set(entry) - set(LANGUAGES) - {"attribute", "order", "index"})
                if bad:
                    raise VocabularyError(f"{where}: unknown key(s) {', '.join(bad)}; use en, zh")
                parsed: dict[str, Any] = {
                    lang: _phrases(entry.get(lang), f"{where}.{lang}") for lang in LANGUAGES
                }
                if section == "superlatives":
                    attributes = _superlative_attributes(entry.get("attribute"))
                    if attributes is None or entry.get("order") not in ("min", "max"):
                        raise VocabularyError(
                            f"{where} needs attribute (one of {', '.join(sorted(SUPERLATIVE_ATTRIBUTES))}, "
                            "or a numeric attribute with its unit such as length_mm or mass_*, or a list "
                            "of those) and order (min or max)"
                        )
                    parsed["attribute"], parsed["order"] = attributes, entry["order"]
                if section == "ordinals":
                    index = entry.get("index")
                    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
                        raise VocabularyError(f"{where}.index must be a positive integer (1 = first)")
                    parsed["index"] = index
                concepts[section][name] = parsed
        lists: dict[str, dict[str, tuple[str, ...]]] = {}
        for section in LIST_SECTIONS:
            body = data.get(section) or {}
            if not isinstance(body, Mapping):
                raise VocabularyError(f"{source}: {section} must be {{en: [...], zh: [...]}}")
            bad = sorted(set(body) - set(LANGUAGES))
            if bad:
                raise VocabularyError(f"{source}: {section} has unknown key(s) {', '.join(bad)}; use en, zh")
            lists[section] = {
                lang: _phrases(body.get(lang), f"{source}: {section}.{lang}") for lang in LANGUAGES
            }
        if not lists["stop"]["en"] or not lists["stop"]["zh"]:
            raise VocabularyError(f"{source}: stop needs at least one English and one Chinese phrase")
        unsafe = []
        rules = data.get("unsafe") or []
        if not isinstance(rules, list):
            raise VocabularyError(f"{source}: unsafe must be a list of {{reason, en: [regex], zh: [regex]}}")
        for i, rule in enumerate(rules):
            where = f"{source}: unsafe[{i}]"
            if not isinstance(rule, Mapping) or not str(rule.get("reason") or "").strip():
                raise VocabularyError(f"{where} needs a reason (told to the operator) and en/zh regex lists")
            patterns = {}
            for lang in LANGUAGES:
                compiled = []
                for j, pattern in enumerate(_phrases(rule.get(lang), f"{where}.{lang}")):
                    try:
                        compiled.append(re.compile(pattern, re.IGNORECASE))
                    except re.error as exc:
                        raise VocabularyError(
                            f"{where}.{lang}[{j}]: invalid regular expression {pattern!r}: {exc}"
                        ) from exc
                patterns[lang] = tuple(compiled)
            bad = sorted(set(rule) - {"reason", "reason_zh", "en", "zh"})
            if bad:
                raise VocabularyError(
                    f"{where}: unknown key(s) {', '.join(bad)}; use reason, reason_zh, en, zh"
                )
            unsafe.append(
                UnsafeRule(
                    reason=str(rule["reason"]).strip(),
                    patterns=patterns,
                    reason_zh=str(rule.get("reason_zh") or "").strip(),
                )
            )
        scalars: dict[str, Any] = {}
        for section, keys in _SCALAR_SECTIONS.items():
            body = data.get(section) or {}
            if not isinstance(body, Mapping):
                raise VocabularyError(f"{source}: {section} must be a mapping")
            for key, value in body.items():
                if key not in keys:
                    raise VocabularyError(f"{source}: {section}.{key} is unknown; known: {', '.join(keys)}")
                kind = keys[key]
                if kind is list:
                    if not isinstance(value, list) or len(value) < 2:
                        raise VocabularyError(
                            f"{source}: {section}.{key} must list sizes from small to large"
                        )
                    scalars[key] = tuple(str(v).lower() for v in value)
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise VocabularyError(
                        f"{source}: {section}.{key} must be a positive number, got {value!r}"
                    )
                scalars[key if section != "typo" else f"typo_{key}"] = kind(value)
        return cls(
            concepts=concepts,
            lists=lists,
            unsafe=tuple(unsafe),
            instructions=_instructions(data.get("instructions") or {}, source),
            glossary=_glossary(data.get("glossary") or {}, source),
            sources=(source,),
            **scalars,
        )

    def phrases(self, section: str, name: str | None = None, lang: str = "en") -> tuple[str, ...]:
        if section in LIST_SECTIONS:
            return self.lists[section][lang]
        return self.concepts[section][name][lang] if name in self.concepts[section] else ()

    def display(self, section: str, name: str, lang: str) -> str:
        """The first phrase of a concept in a language (used to word questions)."""
        words = self.phrases(section, name, lang)
        return words[0] if words else name

    def iter_entries(self) -> Iterable[tuple[str, str, str, str]]:
        """(language, phrase, tag, value) for every phrase; the resolver builds its lexicon from these."""
        for section, (tag, _allowed) in CONCEPT_SECTIONS.items():
            for name, entry in self.concepts[section].items():
                for lang in LANGUAGES:
                    for phrase in entry[lang]:
                        yield lang, phrase, tag, name
        for section, tag in LIST_SECTIONS.items():
            for lang in LANGUAGES:
                for phrase in self.lists[section][lang]:
                    yield lang, phrase, tag, section


def load_vocabulary(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    extra_paths: Sequence[str | os.PathLike[str]] = (),
) -> Vocabulary:
    """Load and merge vocabulary files: ``paths`` (default: the shipped file), then ``extra_paths``."""
    if paths is None:
        base = default_vocabulary_path()
        glossary = base.with_name("disambiguation_glossary.yaml")
        paths = [base, glossary] if glossary.is_file() else [base]
    files = [Path(p) for p in paths]
    # A bare file name ("disambiguation_sim.yaml") is one shipped next to the default vocabulary.
    files += [
        Path(p) if Path(p).is_absolute() or Path(p).is_file() else default_vocabulary_path().parent / p
        for p in extra_paths
    ]
    if not files:
        raise VocabularyError("no vocabulary file given: pass config/disambiguation.yaml")
    merged: dict[str, Any] = {}
    for path in files:
        if not path.is_file():
            raise VocabularyError(f"vocabulary file {path} does not exist: check the path")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise VocabularyError(f"{path}: not valid YAML: {exc}") from exc
        if data is None:
            continue
        if not isinstance(data, Mapping):
            raise VocabularyError(f"{path}: top level must be a mapping of sections")
        # Validate each file alone first so that errors name the file that holds them.
        unknown = sorted(set(data) - KNOWN_SECTIONS)
        if unknown:
            raise VocabularyError(
                f"{path}: unknown section(s) {', '.join(unknown)}; "
                f"known sections are {', '.join(sorted(KNOWN_SECTIONS))}"
            )
        merged = merge_vocabulary_dicts(merged, data)
        try:
            Vocabulary.from_dict(
                merge_vocabulary_dicts({"stop": {"en": ["stop"], "zh": ["停"]}}, data), str(path)
            )
        except VocabularyError:
            raise
    vocab = Vocabulary.from_dict(merged, " + ".join(str(p) for p in files))
    return vocab
