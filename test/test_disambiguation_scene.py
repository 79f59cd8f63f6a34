"""Scene dicts in the FORMAT.md layout become dataclasses; malformed ones fail with clear messages, and a
scene *file* is held to the documented format: one line naming the file and the field, exit status 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from vla_ros.cli import main
from vla_ros.disambiguation import Scene, SceneFormatError, load_scene_file

EXAMPLE_SCENE = Path(__file__).resolve().parents[1] / "config" / "example_scene.yaml"


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
        ({"objects": [{"name": "x"}]}, r"objects\[0\]\.id: missing"),
        ({"objects": [{"id": " "}]}, r"objects\[0\]\.id: missing"),
        ({"objects": [{"id": "a", "position": [1]}]}, "position"),
        ({"objects": [{"id": "a", "position": ["x", 0]}]}, "numbers"),
        ({"objects": [{"id": "a"}], "locations": [{"id": "a"}]}, r"locations\[0\]\.id: .*unique"),
        ({"objects": [{"id": "a"}], "holding": "b"}, "holding"),
        ({"objects": "nope"}, "objects: expected a list"),
    ],
)
def test_malformed_scenes_are_rejected_with_a_message(data, message):
    with pytest.raises(SceneFormatError, match=message):
        Scene.from_dict(data)


def _cell() -> dict:
    return yaml.safe_load(EXAMPLE_SCENE.read_text(encoding="utf-8"))


def _with(change) -> dict:
    scene = _cell()
    change(scene)
    return scene


def _set(path: str, value):
    """A change that sets ``objects.2.position`` (dotted keys and list indices) to value."""

    def change(scene):
        *parents, last = path.split(".")
        node = scene
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(path: str):
    def change(scene):
        *parents, last = path.split(".")
        node = scene
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


# (scene, the message after "scene.yaml: "): each a thing the lenient dict reader let through.
BAD_SCENE_FILES = [
    (_with(_set("objects.2.position", "left")), r'objects\[2\]\.position: expected 3 numbers .*got "left"'),
    (_with(_set("objects.2.position", [0.4, 0.1])), r"objects\[2\]\.position: expected 3 numbers"),
    (_with(_set("objects.0.position", [0.4, 0.1, True])), r"objects\[0\]\.position: expected 3 numbers"),
    (_with(_set("locations.1.position", [0.4, 0.1, ".nan"])), r"locations\[1\]\.position: expected 3"),
    (_with(_set("locations.1.position", [0.4, float("inf"), 0])), r"locations\[1\]\.position: .*finite"),
    (_with(_drop("objects.1.position")), r"objects\[1\]\.position: missing"),
    (_with(_drop("locations.0.position")), r"locations\[0\]\.position: missing"),
    (
        _with(_set("objects.1.kind", "fixture")),
        r'objects\[1\]\.kind: expected one of part, tool, got "fixture"',
    ),
    (_with(_drop("objects.1.kind")), r"objects\[1\]\.kind: expected one of part, tool, got null"),
    (_with(_set("objects.0.id", 7)), r"objects\[0\]\.id: expected text, got 7"),
    (_with(_set("objects.0.id", "")), r"objects\[0\]\.id: missing"),
    (
        _with(_set("locations.0.id", "gear_red")),
        r"locations\[0\]\.id: \"gear_red\" is already the id of objects\[0\]",
    ),
    (
        _with(lambda s: (s["objects"][4].pop("name"), s["objects"][4].pop("category"))),
        r"objects\[4\]: needs a name or a category",
    ),
    (_with(_set("objects.0.color", ["red"])), r"objects\[0\]\.color: expected text"),
    (_with(_set("objects.2.length_mm", "sixty")), r'objects\[2\]\.length_mm: expected a number, got "sixty"'),
    (_with(_set("objects.2.mass_g", "heavy")), r'objects\[2\]\.mass_g: expected a number, got "heavy"'),
    (_with(_set("objects.2.defect", False)), r"objects\[2\]\.defect: expected text, got false \(quote it"),
    (_with(_set("objects.2.attributes", ["M8"])), r"objects\[2\]\.attributes: expected a mapping"),
    (_with(_set("objects.2.attributes", {"sku": None})), r"objects\[2\]\.attributes\.sku: expected text"),
    (_with(_set("locations.2.accepts", "tool")), r"locations\[2\]\.accepts: expected a list"),
    (_with(_set("locations.2.accepts", [{"kind": "tool"}])), r"locations\[2\]\.accepts\[0\]: expected text"),
    (_with(_set("locations.2.role", 3)), r"locations\[2\]\.role: expected text"),
    (_with(_set("holding", "gear_green")), r'holding: "gear_green" is not the id of an object'),
    (_with(_set("holding", "bin_left")), r'holding: "bin_left" is not the id of an object'),
    (_with(_set("holding", 1)), r"holding: expected an object id or null, got 1"),
    (_with(_set("objects", {"id": "a"})), r"objects: expected a list"),
    (_with(_drop("locations")), r"locations: missing"),
    (_with(_set("object", [])), r"object: unknown field; a scene has objects, locations, holding"),
    ({"foo": "bar"}, r"foo: unknown field"),
    (["gear"], r"expected a scene: a mapping with objects, locations and holding"),
    ({"scene": {"objects": [], "locations": 3}}, r"scene\.locations: expected a list, got 3"),
]


@pytest.mark.parametrize(("scene", "message"), BAD_SCENE_FILES)
def test_scene_files_outside_the_documented_format_are_refused_naming_the_field(tmp_path, scene, message):
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(scene), encoding="utf-8")
    with pytest.raises(SceneFormatError, match=f"^{re.escape(str(path))}: {message}"):
        load_scene_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty; a scene lists objects and locations"),
        ("objects: [\n", "not valid YAML/JSON at line 2"),
        ('{"objects": [}', "not valid YAML/JSON at line 1"),
    ],
)
def test_unreadable_scene_files_are_refused(tmp_path, text, message):
    path = tmp_path / "scene.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SceneFormatError, match=f"^{re.escape(str(path))}: {message}"):
        load_scene_file(path)


def test_documented_scenes_load_from_yaml_json_and_benchmark_cases(tmp_path):
    scene = load_scene_file(EXAMPLE_SCENE)
    assert len(scene.objects) == 5 and scene.location("bin_scrap").role == "reject"
    as_json = tmp_path / "scene.json"
    as_json.write_text(json.dumps(_cell()), encoding="utf-8")
    assert load_scene_file(as_json) == scene
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"id": "c", "instruction": "go", "scene": _cell()}), encoding="utf-8")
    assert load_scene_file(case) == scene
    for line in Path("/work/shared/disambiguation/dev.jsonl").read_text(encoding="utf-8").splitlines():
        Scene.from_dict(json.loads(line)["scene"], strict=True)  # the benchmark's scenes are documented ones


def test_disambiguate_refuses_a_bad_scene_file_in_one_line_with_exit_status_2(tmp_path, capsys):
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(_with(_set("objects.2.position", "left"))), encoding="utf-8")
    assert main(["disambiguate", "put the long bolt away", "--scene", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    field = 'objects[2].position: expected 3 numbers [x, y, z] in metres, got "left"'
    assert err == f"vla-ros disambiguate: {path}: {field}"
    with pytest.raises(SceneFormatError):
        main(["--debug", "disambiguate", "put the long bolt away", "--scene", str(path)])
