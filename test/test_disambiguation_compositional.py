"""Referring expressions and repairs composed from the scene (issue 28), in a valve-assembly cell of our
own, in both languages: repairs that are not stops, middles, counted attributes, measures, whole names
that the lexicon would misread, compounds the lexicon lacks, and requests that are not robot tasks."""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import InstructionResolver, Scene


def _obj(oid: str, category: str, xy: tuple[float, float], **extra) -> dict:
    return {
        "id": oid,
        "kind": extra.pop("kind", "part"),
        "category": category,
        "position": [*xy, 0.02],
        **extra,
    }


def _loc(lid: str, name: str, category: str, xy: tuple[float, float], **extra) -> dict:
    return {"id": lid, "name": name, "category": category, "position": [*xy, 0.0], **extra}


VALVE_CELL = {
    "objects": [
        _obj("valve_a", "valve", (0.40, 0.30), name="ball valve", material="brass", mass_g=320, teeth=0),
        _obj("valve_b", "valve", (0.40, 0.00), name="ball valve", material="steel", mass_g=540),
        _obj("valve_c", "valve", (0.40, -0.30), name="check valve", material="brass", mass_g=610),
        _obj("body", "valve_body", (0.62, 0.30), name="valve body", material="steel"),
        _obj("gear_14", "gear", (0.62, -0.10), name="pinion", teeth=14),
        _obj("gear_40", "gear", (0.62, -0.30), name="spur gear", teeth=40),
        _obj("bur", "bur", (0.25, 0.10), name="carbide bur", kind="tool", diameter_mm=2.3),
        _obj("elbow", "fitting", (0.25, -0.15), name="copper elbow", material="copper"),
    ],
    "locations": [
        _loc("bench", "test bench", "station", (0.78, 0.00)),
        _loc("tray1", "tray 1", "tray", (0.60, -0.55)),
        _loc("harness", "harness board", "fixture", (0.80, 0.45)),
        _loc("furnace", "sintering furnace", "oven", (0.80, -0.45)),
        _loc("scrap", "scrap bin", "bin", (0.20, 0.50), role="reject"),
    ],
    "holding": None,
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def cell() -> Scene:
    return Scene.from_dict(VALVE_CELL)


def _cmd(res) -> tuple:
    return (res.status, res.action, res.object_id, res.target_id)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "put the brass ball valve on the test bench, no wait, the steel one",
            ("resolved", "pick_place", "valve_b", "bench"),
        ),
        (
            "move the valve body to tray 1 -- actually the test bench",
            ("resolved", "pick_place", "body", "bench"),
        ),
        (
            "put the check valve on the bench... scratch that, in tray 1",
            ("resolved", "pick_place", "valve_c", "tray1"),
        ),
        ("把黄铜球阀放到测试台，不对，放到1号托盘", ("resolved", "pick_place", "valve_a", "tray1")),
    ],
)
def test_a_repair_replaces_what_it_repairs(resolver, cell, text, expected) -> None:
    assert _cmd(resolver.resolve(text, cell)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "put the valve body in tray 1, wait, the door is open",
        "put the valve body in tray 1, wait",
        "no wait!",
    ],
)
def test_a_wait_that_is_not_a_short_repair_of_scene_words_still_stops(resolver, cell, text) -> None:
    assert _cmd(resolver.resolve(text, cell))[:2] == ("resolved", "stop")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grab the middle valve", "valve_b"),
        ("pick up the valve in the middle", "valve_b"),
        ("拿起中间那个阀门", "valve_b"),
        ("pick up the gear with more teeth", "gear_40"),
        ("pick up the gear with the fewest teeth", "gear_14"),
        ("把齿数少的那个齿轮拿起来", "gear_14"),
        ("pick up the 2.3 bur", "bur"),
        ("grab whatever is between the two brass valves", "valve_b"),
        ("拿起两个黄铜阀门中间的那个东西", "valve_b"),
    ],
)
def test_composed_references_pick_one_object(resolver, cell, text, expected) -> None:
    assert _cmd(resolver.resolve(text, cell)) == ("resolved", "pick", expected, None)


def test_more_of_something_no_part_counts_is_no_reference(resolver, cell) -> None:
    # No attribute is called "time": "one more time" is not "the one with more time".
    res = resolver.resolve("pick up the valve with more time", cell)
    assert res.status == "clarify" and not res.forwarded


def test_words_of_a_name_are_not_read_as_a_person_or_another_category(resolver, cell) -> None:
    # "body" is a person word and "harness" a lexicon cable; here both are words of names.
    res = resolver.resolve("valve body to the harness board", cell)
    assert _cmd(res) == ("resolved", "pick_place", "body", "harness")


def test_a_lexicon_noun_is_not_matched_inside_a_longer_word(resolver) -> None:
    # "spring" is no "mainspring": nothing here is a spring, so it asks instead of picking the barrel.
    scene = Scene.from_dict(
        {"objects": [_obj("barrel", "barrel", (0.4, 0.0), name="mainspring barrel")], "locations": []}
    )
    res = resolver.resolve("pick up the balance spring", scene)
    assert res.status == "clarify" and res.candidates == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("移到烧结炉那边", ("resolved", "move_to", None, "furnace")),  # no dictionary word: 炉 "furnace"
        ("嗯…那个…麻烦把紫铜接头放到测试台上", ("resolved", "pick_place", "elbow", "bench")),
        ("把不锈钢阀体放到测试台", ("resolved", "pick_place", "body", "bench")),  # 阀 -> its English category
    ],
)
def test_chinese_compounds_and_fillers(resolver, cell, text, expected) -> None:
    assert _cmd(resolver.resolve(text, cell)) == expected


def test_a_person_word_inside_a_compound_is_no_person(resolver, cell) -> None:
    # 弯头 is an elbow fitting (the shop-floor glossary); 头 ("head") inside it is no person. A compound
    # in no dictionary with 头 inside is asked about, not refused as a request about a person.
    assert _cmd(resolver.resolve("把弯头拿起来", cell)) == ("resolved", "pick", "elbow", None)
    res = resolver.resolve("把咔头拿起来", cell)
    assert res.status == "clarify" and not res.forwarded


@pytest.mark.parametrize(
    "text",
    ["can you email QA the leak test report", "write up the shift report", "帮我写个报告", "下午开会吗"],
)
def test_office_requests_are_not_robot_tasks(resolver, cell, text) -> None:
    res = resolver.resolve(text, cell)
    assert res.status == "reject" and not res.forwarded


def test_8_pin_before_de_describes_the_connector(resolver) -> None:
    scene = Scene.from_dict(
        {
            "objects": [
                _obj("c8", "connector", (0.42, 0.28), name="8-pin connector"),
                _obj("c2", "connector", (0.40, 0.12), name="2-pin connector"),
            ],
            "locations": [_loc("crimp", "crimp station", "station", (0.8, 0.0))],
        }
    )
    assert _cmd(resolver.resolve("把那个8 pin的connector放到crimp station", scene)) == (
        "resolved", "pick_place", "c8", "crimp",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("put the elbow back where the fittings live", ("resolved", "pick_place", "elbow", "tray1")),
        (
            "ok so the valve body, drop it where the broken stuff goes",
            ("resolved", "pick_place", "body", "scrap"),
        ),
    ],
)
def test_where_a_kind_of_thing_goes_names_the_place_for_it(resolver, text, expected) -> None:
    scene = dict(VALVE_CELL)
    scene["locations"] = [
        {**loc, "accepts": ["fitting"]} if loc["id"] == "tray1" else loc for loc in VALVE_CELL["locations"]
    ]
    assert _cmd(resolver.resolve(text, Scene.from_dict(scene))) == expected


def test_an_unknown_thing_said_the_same_way_is_asked_not_taken_for_the_last_one(resolver, cell) -> None:
    # "咔嗒件也一样": the previous command is repeated for a thing nobody understood: ask which.
    res = resolver.resolve("咔嗒件也一样", cell, ["把黄铜球阀放到测试台"])
    assert res.status == "clarify" and not res.forwarded


@pytest.mark.parametrize(
    ("text", "history", "expected"),
    [
        ("下颌的也一样", ["把上颌模型放到测试台"], ("resolved", "pick_place", "model_lower", "bench")),
        ("深蓝的那个拿起来", [], ("resolved", "pick", "spool_navy", None)),
        ("剪刀收一下", [], ("resolved", "pick_place", "shears", "hook")),
        ("hang the shears back up", [], ("resolved", "pick_place", "shears", "hook")),
    ],
)
def test_sides_colours_and_put_away_words(resolver, text, history, expected) -> None:
    scene = Scene.from_dict(
        {
            "objects": [
                _obj("model_upper", "model", (0.45, 0.25), name="upper model"),
                _obj("model_lower", "model", (0.45, -0.25), name="lower model"),
                _obj("spool_navy", "spool", (0.30, 0.10), name="thread spool", color="navy"),
                _obj("spool_blue", "spool", (0.30, -0.10), name="thread spool", color="blue"),
                _obj("shears", "shears", (0.60, 0.00), name="fabric shears", kind="tool"),
            ],
            "locations": [
                _loc("bench", "test bench", "station", (0.78, 0.00)),
                _loc("hook", "tool hook", "hook", (0.20, 0.50), accepts=["tool"]),
            ],
        }
    )
    assert _cmd(resolver.resolve(text, scene, history)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pick up the valve lighter than 600 g", None),  # two are lighter: ask
        ("pick up the valve heavier than 600 g", "valve_c"),
        ("拿起比600克重的阀门", "valve_c"),
        ("拿起球阀左边那个阀门", None),  # the two ball valves: which one is the landmark? ask
        ("拿起紫铜接头左边那个阀门", "valve_b"),  # the elbow at y=-0.15: valve_b is the nearest to its left
    ],
)
def test_bounds_and_chinese_landmark_sides(resolver, cell, text, expected) -> None:
    res = resolver.resolve(text, cell)
    if expected is None:
        assert res.status == "clarify" and not res.forwarded, res.to_dict()
    else:
        assert _cmd(res) == ("resolved", "pick", expected, None), res.to_dict()


def test_a_chinese_word_only_part_of_a_name_resembles_is_not_acted_on(resolver) -> None:
    # A Chinese word whose only evidence is 锁 "lock", the end of "padlock": asked, not the padlock.
    scene = Scene.from_dict(
        {
            "objects": [
                _obj("padlock", "padlock", (0.70, 0.00), name="padlock"),
                _obj("cyl", "cylinder", (0.40, 0.10), name="5-pin cylinder"),
            ],
            "locations": [],
        }
    )
    # 锁壳 (a lock housing) is in neither dictionary: only its 锁 "lock" resembles "padlock".
    res = resolver.resolve("离你最远的那个锁壳拿起来", scene)
    assert res.status == "clarify" and not res.forwarded, res.to_dict()
    # The shop glossary knows 锁芯 as a lock cylinder: the one cylinder is meant, not the padlock.
    res = resolver.resolve("离你最远的那个锁芯拿起来", scene)
    assert _cmd(res) == ("resolved", "pick", "cyl", None), res.to_dict()


def _shop() -> Scene:
    return Scene.from_dict(
        {
            "objects": [
                _obj("shackle_6", "shackle", (0.40, 0.12), name="6 mm shackle", diameter_mm=6),
                _obj(
                    "shackle_10",
                    "shackle",
                    (0.44, -0.26),
                    name="10 mm shackle",
                    diameter_mm=10,
                    defect="rusted pin",
                ),
                _obj("bottle_a", "bottle", (0.55, 0.30), name="amber bottle", color="amber", volume_ml=500),
                _obj("bottle_g", "bottle", (0.55, 0.00), name="green bottle", color="green", volume_ml=330),
                _obj("bottle_c", "bottle", (0.55, -0.30), name="clear bottle", color="clear", volume_ml=750),
                _obj("punch", "punch", (0.30, 0.40), name="gooseneck punch", kind="tool"),
                _obj("racket", "racket", (0.30, -0.40), name="tennis racket"),
            ],
            "locations": [
                _loc("bench", "QC bench", "station", (0.80, 0.00)),
                _loc("cabinet", "tool cabinet", "cabinet", (0.10, 0.50), accepts=["tool"]),
                _loc("ship", "shipping tote", "bin", (0.10, -0.50), role="output"),
                _loc("scrap", "reject bin", "bin", (0.20, 0.60), role="reject"),
            ],
        }
    )


@pytest.mark.parametrize(
    ("text", "history", "expected"),
    [
        ("the shackle with the rusty pin, scrap it", [], ("resolved", "pick_place", "shackle_10", "scrap")),
        (
            "the bottle that isn't amber or green, onto the QC bench",
            [],
            ("resolved", "pick_place", "bottle_c", "bench"),
        ),
        ("拿个瓶子，不要绿色那个", [], ("clarify", None, None, None)),
        ("the bottle over 600 ml to the QC bench", [], ("resolved", "pick_place", "bottle_c", "bench")),
        ("pop the punch back in the tool cabinet", [], ("resolved", "pick_place", "punch", "cabinet")),
        ("put the punch away", [], ("resolved", "pick_place", "punch", "cabinet")),
        (
            "now the clear bottle, same place",
            ["put the green bottle on the QC bench"],
            ("resolved", "pick_place", "bottle_c", "bench"),
        ),
        (
            "same with the amber bottle",
            ["put the green bottle on the QC bench"],
            ("resolved", "pick_place", "bottle_a", "bench"),
        ),
        ("把它放到发货箱里", ["拿起绿色的瓶子"], ("resolved", "pick_place", "bottle_g", "ship")),
        ("put the tennis balls in the shipping tote", [], ("clarify", None, None, None)),
    ],
)
def test_features_exclusions_bounds_places_and_ellipsis(resolver, text, history, expected) -> None:
    res = resolver.resolve(text, _shop(), history)
    assert _cmd(res) == expected, res.to_dict()


def test_a_measure_answers_which_one(resolver) -> None:
    scene = _shop()
    asked = resolver.resolve("bottle to the QC bench", scene)
    assert asked.status == "clarify" and set(asked.candidates) == {"bottle_a", "bottle_g", "bottle_c"}
    assert _cmd(resolver.answer(asked, "the 330 one", scene)) == (
        "resolved",
        "pick_place",
        "bottle_g",
        "bench",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("黑色手胶收起来", ("resolved", "pick_place", "grip_b", "bin")),  # 手 glued to 胶: no person
        ("把卸扣放到料箱里", ("clarify", None, None, None)),  # 卸扣 "shackle" (CC-CEDICT), two of them
        ("麻麻放到料箱里", ("clarify", None, None, None)),  # an unknown topic is asked about, not dropped
    ],
)
def test_chinese_topics_and_glued_words(resolver, text, expected) -> None:
    scene = Scene.from_dict(
        {
            "objects": [
                _obj("grip_b", "overgrip", (0.40, 0.20), name="black overgrip", color="black"),
                _obj("grip_w", "overgrip", (0.40, -0.20), name="white overgrip", color="white"),
                _obj("sh_6", "shackle", (0.55, 0.10), name="6 mm shackle"),
                _obj("sh_8", "shackle", (0.55, -0.10), name="8 mm shackle"),
            ],
            "locations": [_loc("bin", "grip bin", "bin", (0.2, 0.5), accepts=["overgrip"])],
        }
    )
    res = resolver.resolve(text, scene)
    assert _cmd(res) == expected, res.to_dict()
    if text.startswith("把卸扣"):
        assert set(res.candidates) == {"sh_6", "sh_8"}


@pytest.mark.parametrize(
    ("text", "history", "expected"),
    [
        ("pick up the flange", [], ("clarify", None, None, None)),  # a flange gasket is no flange
        ("pick up the valve on the far right", [], ("resolved", "pick", "valve_c", None)),
        ("the valve weighing 540 grams to tray 1", [], ("resolved", "pick_place", "valve_b", "tray1")),
        (
            "move the valve body to where we keep the bad parts",
            [],
            ("resolved", "pick_place", "body", "scrap"),
        ),
        ("put it back in tray 1", ["pick up the valve body"], ("resolved", "pick_place", "body", "tray1")),
    ],
)
def test_heads_sides_measures_and_places(resolver, text, history, expected) -> None:
    scene = Scene.from_dict(
        {
            **VALVE_CELL,
            "objects": [*VALVE_CELL["objects"], _obj("gasket", "gasket", (0.25, 0.35), name="flange gasket")],
        }
    )
    assert _cmd(resolver.resolve(text, scene, history)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "put the valve that is not a check valve and not steel on the test bench",
            ("resolved", "pick_place", "valve_a", "bench"),
        ),
        ("move the steel ball valve 5 cm to the left", ("resolved", "push", "valve_b", None)),
        ("把钢球阀往左推5厘米", ("resolved", "push", "valve_b", None)),
    ],
)
def test_several_exclusions_and_distances_to_move(resolver, cell, text, expected) -> None:
    res = resolver.resolve(text, cell)
    assert _cmd(res) == expected, res.to_dict()
    if res.action == "push":
        assert res.direction == "left"


@pytest.mark.parametrize(
    ("text", "history", "expected"),
    [
        ("帮我把垫片放到测试台", [], ("resolved", "pick_place", "gasket", "bench")),  # 垫片: washer or gasket
        ("把它放到测试台", ["拿起垫片"], ("resolved", "pick_place", "gasket", "bench")),
        ("把裂了的那个止回阀扔废料箱", [], ("resolved", "pick_place", "valve_c", "scrap")),  # 扔 into a bin
        ("把阀门扔给我", [], ("reject", None, None, None)),
        ("把不是钢的那个球阀拿起来", [], ("resolved", "pick", "valve_a", None)),
        ("把杯子放到测试台", [], ("clarify", None, None, None)),  # 杯子 "cup, glass": no glass material here
    ],
)
def test_other_senses_throwing_into_bins_and_leading_exclusions(resolver, text, history, expected) -> None:
    scene = Scene.from_dict(
        {
            **VALVE_CELL,
            "objects": [
                *VALVE_CELL["objects"],
                _obj("gasket", "gasket", (0.25, 0.35), name="flange gasket"),
                _obj("cutter", "cutter", (0.25, -0.40), name="glass cutter", kind="tool"),
            ],
        }
    )
    assert _cmd(resolver.resolve(text, scene, history)) == expected
