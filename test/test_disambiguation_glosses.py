"""Chinese words the lexicon never listed are read through a Chinese-English dictionary (CC-CEDICT),
against the scene's English words: a furniture cell of our own, none of whose nouns the lexicon holds."""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import InstructionResolver, Scene
from vla_ros.disambiguation.glosses import english_senses

FURNITURE = {
    "objects": [
        {
            "id": "hinge_a",
            "name": "brass hinge",
            "kind": "part",
            "category": "hinge",
            "position": [0.4, 0.3, 0.01],
        },
        {
            "id": "knob",
            "name": "drawer knob",
            "kind": "part",
            "category": "knob",
            "position": [0.4, 0.0, 0.01],
        },
        {
            "id": "front_1",
            "name": "drawer front",
            "kind": "part",
            "category": "panel",
            "position": [0.5, -0.3, 0.02],
        },
        {
            "id": "front_2",
            "name": "drawer front",
            "kind": "part",
            "category": "panel",
            "position": [0.6, 0.2, 0.02],
            "defect": "warped",
        },
        {
            "id": "frame",
            "name": "picture frame",
            "kind": "part",
            "category": "frame",
            "position": [0.3, -0.1, 0.02],
        },
    ],
    "locations": [
        {"id": "jig", "name": "assembly jig", "category": "fixture", "position": [0.7, 0.0, 0.0]},
        {
            "id": "tote",
            "name": "scrap tote",
            "category": "bin",
            "role": "reject",
            "position": [0.2, 0.5, 0.0],
        },
    ],
    "holding": None,
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene.from_dict(FURNITURE)


def test_senses_are_cleaned_of_qualifiers_and_classifiers() -> None:
    assert english_senses("鞋底") == ("sole",)  # "sole (of a shoe)"
    assert "bread" in english_senses("面包") and not any(s.startswith("CL:") for s in english_senses("面包"))
    assert english_senses("不是一个词的词") == ()


@pytest.mark.parametrize(
    ("text", "obj", "target"),
    [
        ("把铰链放到装配夹具上", "hinge_a", "jig"),  # 铰链: "hinge", a category the lexicon lacks
        ("把抽屉把手放到夹具上", "knob", "jig"),  # 把手: "handle, grip, knob"; the first fitting sense wins
        ("把镜框放到夹具上", "frame", "jig"),  # 镜框: "picture frame", a scene name
    ],
)
def test_unlisted_chinese_nouns_ground_through_their_english_senses(
    resolver: InstructionResolver, scene: Scene, text: str, obj: str, target: str
) -> None:
    res = resolver.resolve(text, scene)
    assert (res.status, res.object_id, res.target_id) == ("resolved", obj, target), res.to_dict()


def test_a_sense_that_resembles_a_defect_picks_the_flagged_part(
    resolver: InstructionResolver, scene: Scene
) -> None:
    # 翘曲 "warp" resembles the defect "warped"; without it the two drawer fronts tie.
    res = resolver.resolve("把翘曲的面板放到夹具上", scene)
    assert (res.status, res.object_id, res.target_id) == ("resolved", "front_2", "jig"), res.to_dict()
    tied = resolver.resolve("把面板放到夹具上", scene)
    assert tied.status == "clarify" and set(tied.candidates) == {"front_1", "front_2"}


def test_a_word_whose_senses_fit_nothing_here_is_not_guessed(
    resolver: InstructionResolver, scene: Scene
) -> None:
    # 沙发 "sofa": nothing in the cell is one; the resolver asks instead of acting on another part.
    res = resolver.resolve("把沙发放到夹具上", scene)
    assert res.status == "clarify" and res.object_id is None


def test_the_vocabulary_glossary_is_read_before_the_dictionary(tmp_path) -> None:
    from vla_ros.disambiguation import load_vocabulary
    from vla_ros.disambiguation.vocabulary import VocabularyError, default_vocabulary_path

    extra = tmp_path / "glossary.yaml"
    extra.write_text("glossary:\n  咔嗒件: [clip, 'snap clip']\n", encoding="utf-8")
    vocab = load_vocabulary([default_vocabulary_path()], extra_paths=[extra])
    scene = Scene.from_dict(
        {
            "objects": [
                {
                    "id": "clip",
                    "name": "snap clip",
                    "kind": "part",
                    "category": "fastener",
                    "position": [0.4, 0.2, 0],
                },
                {
                    "id": "hinge",
                    "name": "hinge",
                    "kind": "part",
                    "category": "hinge",
                    "position": [0.4, -0.2, 0],
                },
            ],
            "locations": [{"id": "jig", "name": "jig", "category": "fixture", "position": [0.7, 0, 0]}],
        }
    )
    res = InstructionResolver(vocab).resolve("把咔嗒件放到夹具上", scene)
    assert (res.status, res.object_id, res.target_id) == ("resolved", "clip", "jig"), res.to_dict()
    # Without the entry the word is in no dictionary: the resolver asks.
    assert (
        InstructionResolver(load_vocabulary([default_vocabulary_path()]))
        .resolve("把咔嗒件放到夹具上", scene)
        .status
        == "clarify"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("glossary:\n  咔嗒件: []\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="glossary"):
        load_vocabulary([default_vocabulary_path()], extra_paths=[bad])
