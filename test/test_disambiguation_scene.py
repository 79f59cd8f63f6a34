"""Scene dicts in the FORMAT.md layout become dataclasses; malformed ones fail with clear messages."""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import Scene, SceneFormatError


def test_scene_from_dict_keeps_attributes_and_extra_fields():
    scene = Scene.from_dict(
        {
            "objects": [
                {
                    "id": "bolt_m8",
                    "name": "M8 bolt",
                    "kind": "part",
                    "category": "bolt",
                    "size": "large",
                    "material": "steel",
                    "length_mm": 40,
                    "thread": "M8",
                    "position": [0.5, 0.1, 0.02],
                },
            ],
            "locations": [
                {
                    "id": "rack",
                    "name": "tool rack",
                    "category": "rack",
                    "role": "storage",
                    "accepts": ["tool"],
                    "position": [0.3, 0.3],
                },
            ],
            "holding": "bolt_m8",
        }
    )
    bolt = scene.object("bolt_m8")
    assert (bolt.material, bolt.length_mm, bolt.attributes["thread"]) == ("steel", 40.0, "M8")
    assert scene.location("rack").accepts == ("tool",)
    assert scene.location("rack").position == (0.3, 0.3, 0.0)
    assert scene.holding == "bolt_m8"
    assert Scene.from_dict(scene.to_dict()) == scene


@pytest.mark.parametrize(
    "data, message",
    [
        ({"objects": [{"name": "x"}]}, "id is required"),
        ({"objects": [{"id": "a", "position": [1]}]}, "position"),
        ({"objects": [{"id": "a", "position": ["x", 0]}]}, "numbers"),
        ({"objects": [{"id": "a"}], "locations": [{"id": "a"}]}, "unique"),
        ({"objects": [{"id": "a"}], "holding": "b"}, "holding"),
        ({"objects": "nope"}, "lists"),
    ],
)
def test_malformed_scenes_are_rejected_with_a_message(data, message):
    with pytest.raises(SceneFormatError, match=message):
        Scene.from_dict(data)
