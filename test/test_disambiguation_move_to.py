"""move_to with a part as target, relative and role phrases about places (scenes shaped like the
embedded workcell's, but cells of our own: a painting line and a PCB kitting table)."""

import pytest

from vla_ros.disambiguation import InstructionResolver, Scene, load_vocabulary


def _scene() -> Scene:
    return Scene.from_dict(
        {
            "objects": [
                {"id": "clip_teal", "name": "teal clip", "category": "clip", "color": "teal",
                 "position": [0.45, 0.10, 0.01]},
                {"id": "panel_grey", "name": "grey panel", "category": "panel", "color": "grey",
                 "position": [0.52, -0.08, 0.01]},
                {"id": "clip_white", "name": "white clip", "category": "clip", "color": "white",
                 "position": [0.40, -0.02, 0.01]},
            ],
            "locations": [
                {"id": "rack_dry", "name": "drying rack", "category": "rack", "role": "storage",
                 "accepts": ["panel", "clip"], "position": [0.30, 0.30, 0.0]},
                {"id": "bin_ng", "name": "NG bin", "category": "bin", "role": "reject",
                 "position": [0.30, -0.30, 0.0]},
                {"id": "station_qc", "name": "gloss check station", "category": "station",
                 "role": "inspection", "position": [0.62, 0.0, 0.0]},
            ],
            "holding": None,
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver(load_vocabulary())


@pytest.fixture(scope="module")
def sim_resolver() -> InstructionResolver:
    return InstructionResolver(load_vocabulary(extra_paths=["disambiguation_sim.yaml"]))


@pytest.mark.parametrize(
    "text, target",
    [
        ("go over the grey panel", "panel_grey"),
        ("move to the teal clip", "clip_teal"),
        ("head over to the panel", "panel_grey"),
        ("移动到灰色面板上方", "panel_grey"),
        ("去白色卡子那里", "clip_white"),
        ("move to the drying rack", "rack_dry"),
        ("go to the place on the right", "bin_ng"),
        ("go to the spot on the left", "rack_dry"),
        ("去右边的位置", "bin_ng"),
        ("移动到左边的地方", "rack_dry"),
        ("go to where parts are stored", "rack_dry"),
        ("go to where rejects go", "bin_ng"),
        ("head over to the storage place", "rack_dry"),
        ("去存放的地方", "rack_dry"),
    ],
)
def test_move_to_resolves_place_or_part(resolver, text, target):
    result = resolver.resolve(text, _scene())
    assert result.status == "resolved", (text, result.question)
    assert (result.action, result.target_id) == ("move_to", target)


def test_part_target_wording(resolver, sim_resolver):
    assert resolver.resolve("go over the grey panel", _scene()).instruction == "move above the grey panel"
    # The sim workcell's policy was trained on "move to the {part name}" (vla_ros/sim/tasks.py).
    assert sim_resolver.resolve("去灰色面板上方", _scene()).instruction == "move to the grey panel"
    assert sim_resolver.resolve("go to the NG bin", _scene()).instruction == "move to the NG bin"


def test_tied_parts_ask_then_answer_settles(resolver):
    scene = _scene()
    asked = resolver.resolve("go to the clip", scene)
    assert asked.status == "clarify"
    assert set(asked.candidates) == {"clip_teal", "clip_white"}
    done = resolver.answer(asked, "the white clip", scene)
    assert (done.status, done.target_id) == ("resolved", "clip_white")


@pytest.mark.parametrize("answer, target", [("the grey panel", "panel_grey"), ("the drying rack", "rack_dry"),
                                            ("灰色面板", "panel_grey")])  # fmt: skip
def test_where_should_i_go_accepts_a_place_or_a_part(resolver, answer, target):
    scene = _scene()
    asked = resolver.resolve("go over there" if answer.isascii() else "去那边", scene)
    assert asked.status == "clarify"
    done = resolver.answer(asked, answer, scene)
    assert (done.status, done.action, done.target_id) == ("resolved", "move_to", target)


def test_move_the_part_is_still_pick_and_place(resolver):
    result = resolver.resolve("move the grey panel to the drying rack", _scene())
    assert (result.action, result.object_id, result.target_id) == ("pick_place", "panel_grey", "rack_dry")
