"""Scenes that carry Chinese names beside the English ones (issue 28): a plant that labels its bins and
parts in Chinese gives them as text attributes (``name_zh`` or any other), and an operator who says
those names is understood, for objects and places alike. A cell of our own."""

from __future__ import annotations

import pytest
from scene_builders import loc as _loc
from scene_builders import obj as _obj

from vla_ros.disambiguation import InstructionResolver, Scene

SPLICING = {
    "objects": [
        _obj("sleeve_40", "heat-shrink sleeve 40 mm", "sleeve", (0.40, 0.25), length_mm=40, name_zh="热缩管"),
        _obj("sleeve_60", "heat-shrink sleeve 60 mm", "sleeve", (0.40, 0.05), length_mm=60, name_zh="热缩管"),
        _obj("pigtail", "SC pigtail", "pigtail", (0.50, -0.20), name_zh="SC尾纤"),
        _obj("cleaver", "fibre cleaver", "cleaver", (0.30, -0.30), kind="tool", name_zh="切割刀"),
    ],
    "locations": [
        _loc("heater", "heater slot", "station", (0.80, 0.30), name_zh="加热槽"),
        _loc("waste", "fibre waste box", "bin", (0.80, -0.30), role="reject", name_zh="废纤盒"),
        _loc("tools", "tool rack", "rack", (0.20, 0.40), accepts=["tool"], name_zh="工具架"),
    ],
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("把SC尾纤放到废纤盒里", ("resolved", "pick_place", "pigtail", "waste")),
        ("比50短的那根热缩管搁加热槽上", ("resolved", "pick_place", "sleeve_40", "heater")),
        ("切割刀放回工具架", ("resolved", "pick_place", "cleaver", "tools")),
    ],
)
def test_the_cells_chinese_names_name_things_and_places(resolver, text, expected) -> None:
    res = resolver.resolve(text, Scene.from_dict(SPLICING))
    assert (res.status, res.action, res.object_id, res.target_id) == expected


def test_a_chinese_name_two_things_share_is_asked_with_both(resolver) -> None:
    res = resolver.resolve("热缩管放加热槽", Scene.from_dict(SPLICING))
    assert res.status == "clarify" and set(res.candidates) == {"sleeve_40", "sleeve_60"}
