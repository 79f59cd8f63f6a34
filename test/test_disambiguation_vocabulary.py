"""The vocabulary YAML: shipped file loads, mistakes fail clearly, integrators extend it without code."""

from __future__ import annotations

import textwrap

import pytest

from vla_ros.disambiguation import (
    InstructionResolver,
    Scene,
    VocabularyError,
    default_vocabulary_path,
    load_vocabulary,
)

SCENE = Scene.from_dict(
    {
        "objects": [
            {
                "id": "sprocket_1",
                "name": "sprocket",
                "kind": "part",
                "category": "sprocket",
                "position": [0.5, 0, 0],
            },
            {"id": "gear_1", "name": "gear", "kind": "part", "category": "gear", "position": [0.4, 0.2, 0]},
        ],
        "locations": [
            {"id": "kanban", "name": "kanban rack", "category": "rack", "position": [0.3, 0.3, 0.0]},
            {
                "id": "bin_q",
                "name": "quarantine bin",
                "category": "bin",
                "role": "reject",
                "position": [0.3, -0.3, 0],
            },
        ],
    }
)


def _write(tmp_path, text: str):
    path = tmp_path / "cell.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_vocabulary_loads_with_both_languages():
    vocab = load_vocabulary()
    assert default_vocabulary_path().name == "disambiguation.yaml"
    assert "gear" in vocab.concepts["object_categories"]
    assert vocab.phrases("object_categories", "gear", "zh")
    assert "停" in vocab.lists["stop"]["zh"]


def test_an_integrator_synonym_works_without_code_changes(tmp_path):
    before = InstructionResolver().resolve("pick up the doohickey", SCENE)
    assert (before.status, before.candidates) == ("clarify", ())
    extra = _write(
        tmp_path,
        """
        object_categories:
          sprocket: {en: [doohickey], zh: [小链轮]}
        location_categories:
          rack: {en: [kanban]}
        roles:
          reject: {en: [quarantine], zh: [隔离]}
        """,
    )
    resolver = InstructionResolver(load_vocabulary(extra_paths=[extra]))
    assert resolver.resolve("pick up the doohickey", SCENE).object_id == "sprocket_1"
    assert resolver.resolve("拿起小链轮", SCENE).object_id == "sprocket_1"
    res = resolver.resolve("put the gear in quarantine", SCENE)
    assert (res.action, res.object_id, res.target_id) == ("pick_place", "gear_1", "bin_q")


def test_an_integrator_unsafe_rule_refuses_requests(tmp_path):
    extra = _write(
        tmp_path,
        """
        unsafe:
          - reason: the press is locked out
            reason_zh: 压机已上锁
            en: ['\\bpress\\b']
            zh: ['压机']
        """,
    )
    resolver = InstructionResolver(load_vocabulary(extra_paths=[extra]))
    assert resolver.resolve("put the gear in the press", SCENE).status == "reject"
    assert InstructionResolver().resolve("put the gear in the press", SCENE).status != "reject"


@pytest.mark.parametrize(
    "text, message",
    [
        ("actions:\n  yeet: {en: [yeet]}\n", "actions may only use"),
        ("colours:\n  red: {en: [red]}\n", "unknown section"),
        ("prepositions:\n  from: {en: [off]}\n", "quote it"),
        ("unsafe:\n  - reason: x\n    en: ['(unclosed']\n", "invalid regular expression"),
        ("superlatives:\n  tallest: {attribute: height, order: max, en: [tallest]}\n", "needs attribute"),
        ("spatial:\n  side_margin_m: -1\n", "positive number"),
        ("object_categories:\n  gear: {en: [cog], fr: [engrenage]}\n", "unknown key"),
    ],
)
def test_malformed_vocabulary_fails_with_a_message_naming_the_fix(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(VocabularyError, match=message) as info:
        load_vocabulary(extra_paths=[path])
    assert str(path) in str(info.value)


def test_missing_vocabulary_file_is_reported(tmp_path):
    with pytest.raises(VocabularyError, match="does not exist"):
        load_vocabulary([tmp_path / "nope.yaml"])
