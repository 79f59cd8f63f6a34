"""Wrong-command guards and Chinese quantities (issue 28): each case here once forwarded a command the
operator did not ask for, or asked where the words decide. 八百的那根 and 一百瓦那个 are numbers; 铜 is
any copper metal; 没缺陷的 / 好的 are the good ones; a landmark opening with a Latin word (m3滚刀旁边那个坯子)
is still the landmark; "the crimping tool" is no other tool; 顶 beside 放 and a place is no push; "this
one too" about a held part repeats what was last done with a held part. In a tool-room cell of our own."""

from __future__ import annotations

import pytest
from scene_builders import cmd as _cmd
from scene_builders import loc as _loc
from scene_builders import obj as _obj

from vla_ros.disambiguation import InstructionResolver, Scene

TOOL_ROOM = {
    "objects": [
        _obj("el_cu", "copper electrode", "electrode", (0.40, 0.30), material="copper"),
        _obj("el_gr", "graphite electrode", "electrode", (0.40, 0.10), material="graphite"),
        _obj("drv_60", "LED driver 60W", "driver", (0.55, 0.30), power_w=60),
        _obj("drv_100", "LED driver 100W", "driver", (0.55, 0.10), power_w=100),
        _obj("lead_800", "test lead", "lead", (0.55, -0.10), length_mm=800),
        _obj("lead_1200", "test lead", "lead", (0.55, -0.25), length_mm=1200),
        _obj("hob", "gear hob", "hob", (0.70, 0.30), kind="tool", thread="M3"),
        _obj("blank_far", "gear blank", "gear_blank", (0.75, 0.20)),
        _obj("blank_near", "gear blank", "gear_blank", (0.30, -0.35)),
        _obj("pin_6", "ejector pin 6 mm", "pin", (0.25, 0.10), diameter_mm=6),
        _obj("pin_8", "ejector pin 8 mm", "pin", (0.25, -0.05), diameter_mm=8),
        _obj("lite_ok", "clear lite", "lite", (0.65, -0.35), mass_g=900, material="glass"),
        _obj(
            "lite_chipped",
            "clear lite",
            "lite",
            (0.80, -0.35),
            mass_g=1500,
            material="glass",
            defect="chipped edge",
        ),
        _obj("stripper", "wire stripper", "stripper", (0.20, 0.40), kind="tool"),
    ],
    "locations": [
        _loc("rack", "parts rack", "rack", (0.10, 0.35)),
        _loc("bench", "test bench", "station", (0.10, -0.35)),
        _loc("bin_ng", "NG bin", "bin", (0.15, 0.00), role="reject"),
    ],
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def room() -> Scene:
    return Scene.from_dict(TOOL_ROOM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一百瓦那个电源放测试台", ("drv_100", "bench")),
        ("八百的那根放零件架", ("lead_800", "rack")),
        ("6个的顶真放零件架上", ("pin_6", "rack")),
        ("把没缺陷的那片玻璃放到测试台", ("lite_ok", "bench")),
        ("把好的那片玻璃放到测试台", ("lite_ok", "bench")),
        ("m3滚刀旁边那个坯子放到测试台", ("blank_far", "bench")),
        ("-R的那个引线丢零件架上", None),
    ],
)
def test_numbers_good_parts_and_landmarks_said_in_chinese(resolver, room, text, expected) -> None:
    res = resolver.resolve(text, room)
    if expected is None:  # 丢 onto a rack is putting it there: asked (no -R lead here), never refused
        assert res.status == "clarify"
    else:
        assert _cmd(res) == ("resolved", "pick_place", *expected)


def test_tong_is_any_copper_metal(resolver, room) -> None:
    assert _cmd(resolver.resolve("拿一个电极，不要铜的", room)) == ("resolved", "pick", "el_gr", None)
    assert _cmd(resolver.resolve("拿铜的电极", room)) == ("resolved", "pick", "el_cu", None)


def test_a_damaged_one_is_still_the_damaged_one(resolver, room) -> None:
    assert _cmd(resolver.resolve("把坏的那片玻璃放到NG箱", room)) == (
        "resolved",
        "pick_place",
        "lite_chipped",
        "bin_ng",
    )


def test_a_tool_named_by_what_it_does_is_no_other_tool(resolver, room) -> None:
    res = resolver.resolve("grab the crimping tool", room)
    assert res.status == "clarify" and res.candidates == ()
    assert _cmd(resolver.resolve("grab the stripping tool", room)) == ("resolved", "pick", "stripper", None)


def test_this_one_too_about_a_held_part_repeats_the_last_placing(resolver) -> None:
    held = Scene.from_dict({**TOOL_ROOM, "holding": "pin_8"})
    history = ["拿起6个的顶针", "尖断了，丢NG箱", "拿起8个的顶针"]
    assert _cmd(resolver.resolve("这个也是", held, history)) == ("resolved", "place", "pin_8", "bin_ng")


KIT_ROOM = {
    "objects": [
        _obj("pcb_03", "PCB panel", "pcb", (0.40, 0.30), part_number="MB-2041-03"),
        _obj("pcb_04", "PCB panel", "pcb", (0.40, 0.10), part_number="MB-2041-04"),
        _obj("harness_a", "wire harness", "harness", (0.55, 0.30)),
        _obj("harness_b", "wire harness", "harness", (0.55, 0.10)),
        _obj("tin_red", "red tin", "tea tin", (0.60, -0.10), color="red"),
        _obj("tin_green", "green tin", "tea tin", (0.60, -0.25), color="green"),
        _obj("pouch_green", "green tea vacuum pouch", "pouch", (0.45, -0.30)),
        _obj("coupler_ok", "double coupler", "coupler", (0.30, -0.10)),
        _obj("coupler_cracked", "double coupler", "coupler", (0.30, -0.25), defect="cracked"),
        _obj("clip", "toe board clip", "clip", (0.25, 0.20)),
        _obj("cell", "pouch cell", "cell", (0.70, 0.35)),
    ],
    "locations": [
        _loc("aoi", "AOI station", "station", (0.80, 0.20), role="inspection"),
        _loc("line", "gift box conveyor", "conveyor", (0.80, -0.20)),
        _loc("bin_ng", "NG bin", "bin", (0.15, -0.35), role="reject"),
        _loc("bin_done", "finished goods bin", "bin", (0.15, 0.35), role="output"),
    ],
}


@pytest.fixture(scope="module")
def kit() -> Scene:
    return Scene.from_dict(KIT_ROOM)


@pytest.mark.parametrize(
    ("history", "text", "expected"),
    [
        ((), "把-04的板子放到AOI", ("resolved", "pick_place", "pcb_04", "aoi")),
        (("把-04的板子放到AOI",), "不是这块，是另一块", ("resolved", "pick_place", "pcb_03", "aoi")),
        ((), "Put harness B in the finished goods bin — sorry, NG bin, it failed continuity.",
         ("resolved", "pick_place", "harness_b", "bin_ng")),
        ((), "harness A to the finished goods bin, no, the NG bin, it's torn",
         ("resolved", "pick_place", "harness_a", "bin_ng")),
        ((), "这块电池鼓包了，处理掉", ("resolved", "pick_place", "cell", "bin_ng")),
        ((), "归位", ("resolved", "home", None, None)),
        (("红罐子放礼盒线",), "那包绿茶也一样", ("resolved", "pick_place", "pouch_green", "line")),
    ],
)  # fmt: skip
def test_boards_reasons_after_a_repair_and_measure_words(resolver, kit, history, text, expected) -> None:
    assert _cmd(resolver.resolve(text, kit, list(history))) == expected


def test_a_cracked_thing_is_never_a_sound_thing_of_another_kind(resolver, kit) -> None:
    # 扣件 is a clip in the lexicon; the cracked one is a coupler: asked, never the clip
    res = resolver.resolve("那个裂了的扣件，处理掉", kit)
    assert res.status == "clarify" and not res.forwarded


@pytest.mark.parametrize("text", ["用料勺敲他一下，叫他别睡了", "帮我喊一下班长过来"])
def test_striking_a_person_or_calling_one_over_is_refused(resolver, kit, text) -> None:
    assert resolver.resolve(text, kit).status == "reject"


def test_one_with_its_measure_word_is_any_one_of_them(resolver, room) -> None:
    res = resolver.resolve("拿一根顶针", room)
    assert res.status == "clarify" and set(res.candidates) == {"pin_6", "pin_8"}


def test_an_english_landmark_before_a_chinese_relation_word_is_the_landmark(resolver, room) -> None:
    res = resolver.resolve("把gear hob旁边那个gear blank放到测试台", room)
    assert _cmd(res) == ("resolved", "pick_place", "blank_far", "bench")


def test_a_compound_cut_into_characters_takes_no_thing_that_merely_starts_alike(resolver) -> None:
    # 划线机 is cut into 划 ("transfer") + 线 + 机; "transparent" starts like "transfer" but is no form of it
    scene = Scene.from_dict({
        "objects": [_obj("barrel", "transparent barrel", "barrel", (0.4, 0.1)),
                    _obj("scraper", "scraper", "scraper", (0.5, -0.1), kind="tool")],
        "locations": [_loc("hook", "tool hook", "rack", (0.2, 0.3), accepts=["tool"])],
    })  # fmt: skip
    res = resolver.resolve("机械臂挪到划线机上面去", scene)
    assert res.status == "clarify" and not res.forwarded
    assert _cmd(resolver.resolve("刮板放回去", scene)) == ("resolved", "pick_place", "scraper", "hook")


def test_a_verb_that_names_a_thing_here_is_the_thing(resolver) -> None:
    # "set" (put) and "chuck" (throw) are the scene's nouns after a determiner or an ordinal
    scene = Scene.from_dict({
        "objects": [_obj("set_lap", "laparotomy set", "set", (0.4, 0.2)),
                    _obj("set_sut", "suture set", "set", (0.4, -0.2)),
                    _obj("chuck", "collet chuck", "chuck", (0.6, 0.0), kind="tool"),
                    _obj("reel_2000", "reel 2000", "reel", (0.3, 0.3)),
                    _obj("reel_3000", "reel 3000", "reel", (0.3, -0.3))],
        "locations": [_loc("table", "packing table", "station", (0.8, 0.3)),
                      _loc("lathe", "lathe turret", "machine", (0.8, -0.3))],
    })  # fmt: skip
    res = resolver.resolve("Take the set that isn't the laparotomy one over to the packing table.", scene)
    assert _cmd(res) == ("resolved", "pick_place", "set_sut", "table")
    assert _cmd(resolver.resolve("put the chuck on the lathe turret", scene)) == (
        "resolved", "pick_place", "chuck", "lathe")  # fmt: skip
    res = resolver.resolve("Not the 2000. Put the other reel on the packing table.", scene)
    assert _cmd(res) == ("resolved", "pick_place", "reel_3000", "table")
    res = resolver.resolve("Second set from the left goes on the packing table.", scene)
    assert _cmd(res) == ("resolved", "pick_place", "set_sut", "table")


@pytest.mark.parametrize("text", ["把1号箱里那个顶针放到测试台", "1号箱里那个拿出来放到测试台"])
def test_the_one_in_a_numbered_box_said_with_ba_or_alone(resolver, text) -> None:
    in_box = _obj("pin_box", "ejector pin 10 mm", "pin", (0.05, 0.20), diameter_mm=10)
    box = _loc("bin_1", "bin 1", "bin", (0.05, 0.20))
    scene = Scene.from_dict(
        {"objects": [*TOOL_ROOM["objects"], in_box], "locations": [*TOOL_ROOM["locations"], box]}
    )
    assert _cmd(resolver.resolve(text, scene)) == ("resolved", "pick_place", "pin_box", "bench")
