"""Wrong-command guards and Chinese quantities (issue 28): each case here once forwarded a command the
operator did not ask for, or asked where the words decide. 八百的那根 and 一百瓦那个 are numbers; 铜 is
any copper metal; 没缺陷的 / 好的 are the good ones; a landmark opening with a Latin word (m3滚刀旁边那个坯子)
is still the landmark; "the crimping tool" is no other tool; 顶 beside 放 and a place is no push; "this
one too" about a held part repeats what was last done with a held part. In a tool-room cell of our own."""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import InstructionResolver, Scene


def _obj(oid: str, name: str, category: str, xy: tuple[float, float], **extra) -> dict:
    return {"id": oid, "name": name, "kind": extra.pop("kind", "part"), "category": category,
            "position": [*xy, 0.02], **extra}  # fmt: skip


def _loc(lid: str, name: str, category: str, xy: tuple[float, float], **extra) -> dict:
    return {"id": lid, "name": name, "category": category, "position": [*xy, 0.0], **extra}


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


def _cmd(res) -> tuple:
    return (res.status, res.action, res.object_id, res.target_id)


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
