"""Self-repairs, ellipsis after an unanswered question, and hovering (issue 28): "..., hang on, tray B",
"no, bin 2" after a command, "same for the back", "跟刚才一样，番茄的", "position the arm over X, don't
grab anything", "臂挪到压机上方，先别抓", in a press-shop cell of our own, in both languages. A stop
word that opens anything but a short repair of scene words still stops."""

from __future__ import annotations

import pytest
from scene_builders import cmd as _cmd
from scene_builders import loc as _loc
from scene_builders import obj as _obj

from vla_ros.disambiguation import InstructionResolver, Scene

PRESS_SHOP = {
    "objects": [
        _obj("bush", "brass bush", "bush", (0.40, 0.20), material="brass"),
        _obj("panel_front", "front panel", "panel", (0.50, 0.05)),
        _obj("panel_back", "back panel", "panel", (0.50, -0.10)),
        _obj("spring_tor", "torsion spring", "spring", (0.35, -0.25)),
        _obj("pkt_tomato", "tomato seed packet", "packet", (0.60, 0.30)),
        _obj("pkt_carrot", "carrot seed packet", "packet", (0.60, 0.15)),
    ],
    "locations": [
        _loc("press", "press", "machine", (0.75, 0.00)),
        _loc("tray_a", "tray A", "tray", (0.30, 0.40)),
        _loc("tray_b", "tray B", "tray", (0.30, -0.40)),
        _loc("bin_1", "bin 1", "bin", (0.20, 0.30)),
        _loc("bin_2", "bin 2", "bin", (0.20, -0.30)),
        _loc("conveyor", "conveyor", "conveyor", (0.70, 0.40)),
        _loc("qc", "QC station", "station", (0.70, -0.40), role="inspection"),
    ],
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def shop() -> Scene:
    return Scene.from_dict(PRESS_SHOP)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("load the brass bush on the conveyor — no wait, press first", ("bush", "press")),
        ("bush to tray A — hang on, tray B", ("bush", "tray_b")),
        ("put the bush in tray A, hold on, tray B", ("bush", "tray_b")),
        ("把铜衬套放到A托盘，呃，不对，放到B托盘", ("bush", "tray_b")),
        ("把铜衬套放到A托盘…哦不是，放到B托盘", ("bush", "tray_b")),
        ("把铜衬套放到A托盘，不不，放到B托盘", ("bush", "tray_b")),
    ],
)
def test_a_repair_after_hang_on_or_an_interjection_replaces_the_place(resolver, shop, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop)) == ("resolved", "pick_place", *expected)


@pytest.mark.parametrize(
    "text",
    ["put the bush in tray A, hang on, the door is open", "hang on", "移到压机上方，先别动"],
)
def test_hang_on_or_dont_move_that_is_no_short_repair_still_stops(resolver, shop, text) -> None:
    assert _cmd(resolver.resolve(text, shop))[:2] == ("resolved", "stop")


@pytest.mark.parametrize(
    "text",
    [
        "go over the press n wait there",
        "position the arm over the press, don't grab anything",
        "Go hover over the press.",
        "机械臂移到压机上方",
        "臂挪到压机上方，先别抓",
        "到压机上方等着",
    ],
)
def test_the_arm_goes_over_a_place_and_waits_without_grasping(resolver, shop, text) -> None:
    assert _cmd(resolver.resolve(text, shop)) == ("resolved", "move_to", None, "press")


def test_a_role_word_alone_is_a_place_to_go(resolver, shop) -> None:
    # "QC" is the inspection role: no part is meant, however many parts there are
    assert _cmd(resolver.resolve("go to QC", shop)) == ("resolved", "move_to", None, "qc")


def test_an_unanswered_question_lends_its_place_to_the_next_ellipsis(resolver, shop) -> None:
    # The operator never said which "worn widget" and moved on: the bush goes where it was to go.
    res = resolver.resolve("铜衬套也一样", shop, ["把磨损的小零件放进2号箱"])
    assert _cmd(res) == ("resolved", "pick_place", "bush", "bin_2")


@pytest.mark.parametrize(
    ("history", "text", "expected"),
    [
        (
            "put the front panel on the press",
            "same for the back",
            ("resolved", "pick_place", "panel_back", "press"),
        ),
        ("把胡萝卜种子包放到压机上", "跟刚才一样，番茄的", ("resolved", "pick_place", "pkt_tomato", "press")),
        ("把胡萝卜种子包放到压机上", "跟刚才一样", ("resolved", "pick_place", "pkt_carrot", "press")),
        ("put the torsion spring in bin 1", "no, bin 2", ("resolved", "pick_place", "spring_tor", "bin_2")),
        (
            "put the torsion spring in bin 1",
            "不对，放2号箱",
            ("resolved", "pick_place", "spring_tor", "bin_2"),
        ),
        ("put the torsion spring in bin 1", "no, go to bin 2", ("resolved", "move_to", None, "bin_2")),
    ],
)
def test_an_ellipsis_or_a_repair_changes_only_what_it_says(resolver, shop, history, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop, [history])) == expected


def test_a_side_said_for_a_thing_no_name_has_is_asked_not_a_repeat(resolver, shop) -> None:
    res = resolver.resolve("same for the top", shop, ["put the front panel on the press"])
    assert res.status == "clarify" and not res.forwarded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can you move above the press and just wait there", ("resolved", "move_to", None, "press")),
        ("机械臂先过去压机那边等着", ("resolved", "move_to", None, "press")),
        ("right, take the arm across to the press", ("resolved", "move_to", None, "press")),
        ("Front panel to tray A. Hang on. Back. The back panel.",
         ("resolved", "pick_place", "panel_back", "tray_a")),
        ("right so what I need, if you don't mind, is the brass bush going into tray B yeah",
         ("resolved", "pick_place", "bush", "tray_b")),
        ("that bush's had it, stick it in bin 2", ("resolved", "pick_place", "bush", "bin_2")),
    ],
)  # fmt: skip
def test_waiting_over_a_place_repairs_between_full_stops_and_asides(resolver, shop, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop)) == expected


def test_gao_cuo_le_opens_a_repair_of_the_last_command(resolver, shop) -> None:
    res = resolver.resolve("搞错了，放2号箱", shop, ["put the torsion spring in bin 1"])
    assert _cmd(res) == ("resolved", "pick_place", "spring_tor", "bin_2")


@pytest.mark.parametrize(
    ("history", "text", "expected"),
    [
        ((), "臂过去压机那边停着", ("resolved", "move_to", None, "press")),
        ((), "Park the arm over the press.", ("resolved", "move_to", None, "press")),
        ((), "park the arm", ("resolved", "home", None, None)),
        ((), "go to the home position", ("resolved", "home", None, None)),
        (("push the brass bush forward a bit",), "a bit more", ("resolved", "push", "bush", None)),
    ],
)
def test_waiting_parking_over_a_place_and_a_bit_more(resolver, shop, history, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop, list(history))) == expected


def test_a_doubled_opener_repairs_the_place(resolver, shop) -> None:
    res = resolver.resolve("不对不对，放2号箱", shop, ["put the torsion spring in bin 1"])
    assert _cmd(res) == ("resolved", "pick_place", "spring_tor", "bin_2")


def test_a_number_alone_repairs_the_place_number_when_the_thing_has_a_letter(resolver) -> None:
    scene = Scene.from_dict({
        "objects": [_obj("oring", "O-ring", "seal", (0.4, 0.2)),
                    _obj("body_1", "faucet body", "body", (0.5, 0.1)),
                    _obj("body_2", "faucet body", "body", (0.5, -0.1))],
        "locations": [_loc("fix_1", "assembly fixture 1", "fixture", (0.8, 0.3)),
                      _loc("fix_2", "assembly fixture 2", "fixture", (0.8, -0.3))],
    })  # fmt: skip
    assert _cmd(resolver.resolve("O圈放一号工装，哦说错了，二号", scene)) == (
        "resolved",
        "pick_place",
        "oring",
        "fix_2",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the place trails off ("放到…"), then the repair says it
        ("把铜衬套放到…不是，放2号箱", ("resolved", "pick_place", "bush", "bin_2")),
        ("把铜衬套放到…不对，放压机上", ("resolved", "pick_place", "bush", "press")),
        # a repair that places what the instruction had only picked
        ("把铜衬套拿起来，不对，放2号箱", ("resolved", "pick_place", "bush", "bin_2")),
        # "拿X，不是，拿Y" takes another thing; Y is no place
        ("拿铜衬套…不是，拿扭簧", ("resolved", "pick", "spring_tor", None)),
    ],
)
def test_a_repair_after_a_trailing_off_place_or_a_pick_says_the_place(resolver, shop, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop)) == expected


def test_wait_no_after_a_command_repairs_it_with_scene_words_only(resolver, shop) -> None:
    history = ["put the front panel in tray A"]
    res = resolver.resolve("wait, no, I meant the back panel", shop, history)
    assert _cmd(res) == ("resolved", "pick_place", "panel_back", "tray_a") and res.corrects_previous
    assert _cmd(resolver.resolve("no wait — tray B", shop, history)) == (
        "resolved",
        "pick_place",
        "panel_front",
        "tray_b",
    )
    # anything else after it, a bare "wait, no", or no command before: a stop
    for text, before in [
        ("wait, no, the door is open", history),
        ("wait, no", history),
        ("wait, no, I meant the back panel", []),
    ]:
        assert _cmd(resolver.resolve(text, shop, before))[:2] == ("resolved", "stop"), text
