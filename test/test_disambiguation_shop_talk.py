"""Shop talk the resolver must read (issue 28): places said by a Chinese noun whose lexicon category
names no place here (二号板 for "taping board 2", 背板 for a "panel backplate"), a repair that names such
a place, a state before 那 (没开裂的那捆, 良品那捆, 开裂的那捆), ordinals counted 从右往左 or 右手边头一个,
the one 靠右边, "n" for "and", "thats", and "board one" where a name says "board 1". A harness and
bamboo cell of our own, in both languages."""

from __future__ import annotations

import pytest
from scene_builders import cmd as _cmd
from scene_builders import loc as _loc
from scene_builders import obj as _obj

from vla_ros.disambiguation import InstructionResolver, Scene

CELL = {
    "objects": [
        _obj("conn_4", "4-pin connector housing", "connector", (0.45, -0.20)),
        _obj("conn_12", "12-pin connector housing", "connector", (0.45, 0.05)),
        _obj("conn_6", "6-pin connector housing", "connector", (0.45, 0.25)),
        _obj("bundle_split", "bamboo strip bundle", "strip_bundle", (0.60, 0.20), defect="split"),
        _obj("bundle_ok", "bamboo strip bundle", "strip_bundle", (0.60, -0.20)),
        _obj("link", "quick link", "link", (0.30, 0.30), part_number="QL-11"),
    ],
    "locations": [
        _loc("board_1", "taping board 1", "fixture", (0.80, 0.25)),
        _loc("board_2", "taping board 2", "fixture", (0.80, -0.25)),
        _loc("backplate", "panel backplate", "fixture", (0.85, 0.00)),
        _loc("insp", "inspection table", "station", (0.20, -0.40), role="inspection"),
        _loc("scrap", "scrap bin", "bin", (0.20, 0.40), role="reject"),
    ],
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def cell() -> Scene:
    return Scene.from_dict(CELL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12针的插件放到二号板", ("conn_12", "board_2")),
        ("把12针那个放一号板子上", ("conn_12", "board_1")),
        ("把QL-11装到背板上", ("link", "backplate")),
        ("把12针那个放二号板……不对不对，一号板", ("conn_12", "board_1")),
        ("没开裂的那捆放检验台", ("bundle_ok", "insp")),
        ("良品那捆放检验台", ("bundle_ok", "insp")),
        ("开裂的那捆报废", ("bundle_split", "scrap")),
        ("从右往左数第一个插件放到二号板", ("conn_4", "board_2")),
        ("右手边头一个插件放到二号板", ("conn_4", "board_2")),
        ("靠左边那个插件放到一号板", ("conn_6", "board_1")),
        ("靠右的那个插件放到一号板", ("conn_4", "board_1")),
        ("grab QL-11 n drop it on board one", ("link", "board_1")),
        ("the connector thats farthest left goes on board two", ("conn_6", "board_2")),
    ],
)
def test_places_states_ordinals_and_shorthand(resolver, cell, text, expected) -> None:
    assert _cmd(resolver.resolve(text, cell)) == ("resolved", "pick_place", *expected)


def test_a_chinese_noun_that_names_neither_a_thing_nor_a_place_is_asked(resolver, cell) -> None:
    res = resolver.resolve("12针的插件放到货架上", cell)
    assert res.status == "clarify" and not res.forwarded


def test_this_is_what_the_gripper_holds_whatever_it_is_called(resolver) -> None:
    scene = Scene.from_dict({**CELL, "holding": "conn_12"})
    # no bottle here: "this bottle failed, scrap it" is the thing in hand
    assert _cmd(resolver.resolve("这个瓶子打压没过，报废吧", scene)) == (
        "resolved",
        "place",
        "conn_12",
        "scrap",
    )
    # among several connectors, "this connector" is the one in hand
    assert _cmd(resolver.resolve("这个插件放二号板", scene)) == ("resolved", "place", "conn_12", "board_2")
    # with nothing in hand "this bottle" names nothing
    assert resolver.resolve("这个瓶子报废", Scene.from_dict(CELL)).status == "clarify"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # hovering: "go sit over", "go wait above", 上方停一下
        ("go sit over board one", ("resolved", "move_to", None, "board_1")),
        ("go wait above the backplate", ("resolved", "move_to", None, "backplate")),
        ("移到二号板上方停一下", ("resolved", "move_to", None, "board_2")),
        # ... but a wait that is said alone, or before anything else, still stops
        ("wait above the backplate", ("resolved", "stop", None, None)),
        ("移到二号板上方，停一下，有人", ("resolved", "stop", None, None)),
    ],
)
def test_waiting_over_a_place(resolver, cell, text, expected) -> None:
    assert _cmd(resolver.resolve(text, cell)) == expected


def test_them_said_em_refers_back(resolver, cell) -> None:
    res = resolver.resolve("done with those, put em on board two", cell, ["pick up the 4-pin connector"])
    assert _cmd(res) == ("resolved", "pick_place", "conn_4", "board_2")


def test_a_place_word_said_as_the_verb_puts_the_thing_there(resolver) -> None:
    scene = Scene.from_dict(
        {**CELL, "locations": [*CELL["locations"], _loc("quar", "quarantine cage", "rack", (0.1, 0.0))]}
    )
    assert _cmd(resolver.resolve("quarantine the 4-pin connector", scene)) == (
        "resolved",
        "pick_place",
        "conn_4",
        "quar",
    )
    assert _cmd(resolver.resolve("ok so quarantine that split bundle", scene)) == (
        "resolved",
        "pick_place",
        "bundle_split",
        "quar",
    )
    # a word two places share says no one place: asked
    assert resolver.resolve("taping the 4-pin connector", scene).status == "clarify"


VIOLIN = {
    "objects": [
        _obj("clamp_1", "spool clamp", "clamp", (0.40, -0.30)),
        _obj("clamp_2", "spool clamp", "clamp", (0.40, 0.00)),
        _obj("shelf", "glass shelf", "shelf", (0.55, 0.20)),
    ],
    "locations": [
        _loc("clamp_rack", "clamp rack", "rack", (0.20, 0.40)),
        _loc("cradle", "body cradle", "fixture", (0.80, 0.00)),
        _loc("insp", "inspection table", "station", (0.80, -0.35)),
    ],
}


def test_a_place_word_opening_the_sentence_is_the_thing_put(resolver) -> None:
    scene = Scene.from_dict(VIOLIN)
    # the lexicon's 夹子 is a fixture; before 放回 and another place it is a clamp of this cell
    assert _cmd(resolver.resolve("从右边数第一个夹子放回夹子架", scene)) == (
        "resolved",
        "pick_place",
        "clamp_1",
        "clamp_rack",
    )
    res = resolver.resolve("夹子放回夹子架", scene)
    assert res.status == "clarify" and set(res.candidates) == {"clamp_1", "clamp_2"}
    # 放回 alone puts back what is held, and asks what when nothing is (it never moves the arm there)
    assert resolver.resolve("放回夹子架", scene).status == "clarify"
    held = Scene.from_dict({**VIOLIN, "holding": "clamp_2"})
    assert _cmd(resolver.resolve("放回夹子架", held)) == ("resolved", "place", "clamp_2", "clamp_rack")


def test_a_chinese_words_english_gloss_is_no_typo_of_another_word(resolver) -> None:
    # 线体 (a line) glosses 线 as "cable", which is no misspelt "table": nothing here is a line, asked
    res = resolver.resolve("玻璃层架放线体上", Scene.from_dict(VIOLIN))
    assert res.status == "clarify" and not res.forwarded


def test_a_bare_long_one_after_a_kind_is_the_long_one_of_that_kind(resolver) -> None:
    scene = Scene.from_dict({
        "objects": [_obj("scr_s", "wood screw 4x16", "screw", (0.4, 0.2), length_mm=16),
                    _obj("scr_l", "wood screw 4x40", "screw", (0.4, 0.0), length_mm=40),
                    _obj("bolt_6", "M6 connector bolt", "bolt", (0.5, -0.2), length_mm=50),
                    _obj("bolt_8", "M8 connector bolt", "bolt", (0.5, -0.35), length_mm=50)],
        "locations": [_loc("bag_a", "kit bag A", "bag", (0.8, 0.3)),
                      _loc("bag_b", "kit bag B", "bag", (0.8, -0.3))],
    })  # fmt: skip
    assert _cmd(resolver.resolve("长的放B袋", scene, ["把短螺丝放A袋"])) == (
        "resolved",
        "pick_place",
        "scr_l",
        "bag_b",
    )
    # said first, "the long one" is the longest of all: the two bolts tie, asked
    res = resolver.resolve("长的放B袋", scene)
    assert res.status == "clarify" and set(res.candidates) == {"bolt_6", "bolt_8"}


def test_loading_onto_or_weighing_is_putting_there(resolver) -> None:
    scene = Scene.from_dict({
        "objects": [_obj("btl_250", "250 ml bottle", "bottle", (0.4, 0.2), volume_ml=250),
                    _obj("btl_500", "500 ml bottle", "bottle", (0.4, -0.2), volume_ml=500),
                    _obj("pack", "mince pack", "pack", (0.5, 0.0), part_number="MIN-500")],
        "locations": [_loc("fill", "filling line", "conveyor", (0.8, 0.3)),
                      _loc("scale", "label scale", "station", (0.8, -0.3))],
    })  # fmt: skip
    assert _cmd(resolver.resolve("小一点的瓶子上灌装线", scene)) == (
        "resolved",
        "pick_place",
        "btl_250",
        "fill",
    )
    assert _cmd(resolver.resolve("麻烦把MIN-500那盒过下秤", scene)) == (
        "resolved",
        "pick_place",
        "pack",
        "scale",
    )
    assert _cmd(resolver.resolve("那个pack过一下秤", scene)) == ("resolved", "pick_place", "pack", "scale")
