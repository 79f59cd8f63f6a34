"""Behaviour of the instruction resolver, one group per benchmark category (en + zh).

Scenes and phrasings here are our own (not the dev set), so that these tests check mechanisms.
"""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import InstructionResolver, Scene


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


def _obj(oid, category, xy, kind="part", **extra):
    data = {
        "id": oid,
        "name": extra.pop("name", category),
        "kind": kind,
        "category": category,
        "size": extra.pop("size", "medium"),
        "position": [xy[0], xy[1], 0.01],
    }
    data.update(extra)
    return data


def _loc(lid, name, category, xy, **extra):
    return {"id": lid, "name": name, "category": category, "position": [xy[0], xy[1], 0.0], **extra}


def press_cell(holding=None) -> Scene:
    """A press-line cell: two gears, two shafts of different length, a tool, and five places."""
    return Scene.from_dict(
        {
            "objects": [
                _obj("gear_s", "gear", (0.50, 0.12), name="small gear", size="small", color="green"),
                _obj("gear_l", "gear", (0.50, -0.12), name="large gear", size="large", color="orange"),
                _obj("shaft_120", "shaft", (0.62, 0.22), name="shaft", length_mm=120),
                _obj("shaft_80", "shaft", (0.36, 0.20), name="shaft", length_mm=80),
                _obj("spanner", "wrench", (0.40, -0.30), kind="tool", name="wrench"),
                _obj("cover", "housing", (0.66, 0.00), name="cover housing", material="aluminium"),
            ],
            "locations": [
                _loc("press_fx", "press fixture", "fixture", (0.72, -0.22)),
                _loc("fx_b", "fixture B", "fixture", (0.72, 0.25)),
                _loc("tray_in", "input tray", "tray", (0.30, 0.30)),
                _loc("tray_out", "output tray", "tray", (0.30, -0.30), role="output"),
                _loc("chute", "scrap chute", "bin", (0.20, 0.00), role="reject"),
                _loc("tool_wall", "tool wall", "rack", (0.15, 0.40), role="storage", accepts=["tool"]),
            ],
            "holding": holding,
        }
    )


def _cmd(res):
    return (res.status, res.action, res.object_id, res.target_id, res.direction)


# ---------------------------------------------------------------- explicit / synonym
@pytest.mark.parametrize(
    "text, expected",
    [
        ("pick up the wrench", ("resolved", "pick", "spanner", None, None)),
        ("put the small gear on fixture B", ("resolved", "pick_place", "gear_s", "fx_b", None)),
        ("move the arm to the input tray", ("resolved", "move_to", None, "tray_in", None)),
        ("拿起扳手", ("resolved", "pick", "spanner", None, None)),
        ("把外壳放到夹具B上", ("resolved", "pick_place", "cover", "fx_b", None)),
    ],
)
def test_explicit_instructions_resolve_to_the_named_command(resolver, text, expected):
    assert _cmd(resolver.resolve(text, press_cell())) == expected


@pytest.mark.parametrize(
    "text, obj",
    [
        ("grab the spanner", "spanner"),
        ("lift the casing", "cover"),
        ("拿起板手", "spanner"),
        ("拿起壳体", "cover"),
    ],
)
def test_synonyms_and_shop_jargon_name_the_same_object(resolver, text, obj):
    res = resolver.resolve(text, press_cell())
    assert (res.status, res.action, res.object_id) == ("resolved", "pick", obj)


def test_canonical_instruction_is_explicit_english(resolver):
    res = resolver.resolve("把小齿轮放进废料槽", press_cell())
    assert res.status == "resolved"
    assert res.language == "zh"
    assert res.instruction == "pick up the small gear and place it in the scrap chute"


# ---------------------------------------------------------------- ambiguous / missing
def test_two_matching_objects_make_the_resolver_ask_instead_of_guessing(resolver):
    res = resolver.resolve("put the gear on the input tray", press_cell())
    assert res.status == "clarify"
    assert set(res.candidates) == {"gear_s", "gear_l"}
    assert "gear_s" in res.question and "gear_l" in res.question


def test_two_matching_places_are_asked_about(resolver):
    res = resolver.resolve("put the wrench on the fixture", press_cell())
    assert (res.status, set(res.candidates)) == ("clarify", {"press_fx", "fx_b"})


def test_question_is_in_the_operators_language(resolver):
    res = resolver.resolve("把轴放到输入托盘上", press_cell())
    assert res.status == "clarify" and set(res.candidates) == {"shaft_120", "shaft_80"}
    assert res.language == "zh" and "请问" in res.question


@pytest.mark.parametrize(
    "text",
    [
        "pick up the hammer",
        "put the bracket in the scrap chute",
        "go to the paint booth",
        "拿起弹簧",
        "把齿轮放到传送带上",
    ],
)
def test_nothing_in_the_cell_fits_gives_an_empty_clarification(resolver, text):
    res = resolver.resolve(text, press_cell())
    assert (res.status, res.candidates) == ("clarify", ())
    assert res.question


# ---------------------------------------------------------------- attribute / spatial
@pytest.mark.parametrize(
    "text, obj",
    [
        ("pick up the longer shaft", "shaft_120"),
        ("pick up the short shaft", "shaft_80"),
        ("grab the orange gear", "gear_l"),
        ("grab the aluminium part", "cover"),
        ("pick up the big gear", "gear_l"),
        ("把小齿轮拿起来", "gear_s"),
        ("拿起长一点的轴", "shaft_120"),
    ],
)
def test_attributes_select_one_object(resolver, text, obj):
    res = resolver.resolve(text, press_cell())
    assert (res.status, res.object_id) == ("resolved", obj)


@pytest.mark.parametrize(
    "text, obj",
    [
        ("pick up the gear on the left", "gear_s"),
        ("pick up the right gear", "gear_l"),
        ("pick up the gear closest to the wrench", "gear_l"),
        ("pick up the shaft nearest the robot", "shaft_80"),
        ("grab the part on the press fixture", None),
        ("把最右边的齿轮拿起来", "gear_l"),
        ("拿起扳手旁边的齿轮", "gear_l"),
    ],
)
def test_spatial_words_use_base_frame_positions(resolver, text, obj):
    res = resolver.resolve(text, press_cell())
    if obj is None:  # nothing lies on the press fixture
        assert (res.status, res.candidates) == ("clarify", ())
    else:
        assert (res.status, res.object_id) == ("resolved", obj)


def test_objects_on_a_location_are_found_by_distance(resolver):
    scene = press_cell()
    on_fixture = Scene.from_dict(
        {**scene.to_dict(), "objects": [*scene.to_dict()["objects"], _obj("nut_1", "nut", (0.71, -0.21))]}
    )
    res = resolver.resolve("pick up the part on the press fixture", on_fixture)
    assert (res.status, res.object_id) == ("resolved", "nut_1")


# ---------------------------------------------------------------- anaphora / ellipsis
def test_pronoun_refers_to_the_held_object_and_places_it(resolver):
    res = resolver.resolve(
        "put it on the output tray", press_cell(holding="gear_s"), ["pick up the small gear"]
    )
    assert _cmd(res) == ("resolved", "place", "gear_s", "tray_out", None)


def test_pronoun_refers_to_the_last_object_in_the_history_when_nothing_is_held(resolver):
    res = resolver.resolve("now move it to fixture B", press_cell(), ["put the cover on the input tray"])
    assert _cmd(res) == ("resolved", "pick_place", "cover", "fx_b", None)


def test_chinese_pronoun_uses_the_held_object(resolver):
    res = resolver.resolve("把它放进废料槽", press_cell(holding="spanner"), ["拿起扳手"])
    assert (res.status, res.action, res.target_id) == ("resolved", "place", "chute")


def test_same_for_another_object_reuses_the_previous_target(resolver):
    res = resolver.resolve("same for the large gear", press_cell(), ["put the small gear on fixture B"])
    assert _cmd(res) == ("resolved", "pick_place", "gear_l", "fx_b", None)


def test_the_other_one_excludes_the_previous_object(resolver):
    res = resolver.resolve("now the other one", press_cell(), ["put the long shaft on the input tray"])
    assert _cmd(res) == ("resolved", "pick_place", "shaft_80", "tray_in", None)


def test_again_repeats_the_last_push(resolver):
    res = resolver.resolve("again", press_cell(), ["nudge the cover a little to the right"])
    assert _cmd(res) == ("resolved", "push", "cover", None, "right")


def test_chinese_ellipsis_inherits_the_category(resolver):
    res = resolver.resolve("小的也一样", press_cell(), ["把大齿轮放到夹具B上"])
    assert _cmd(res) == ("resolved", "pick_place", "gear_s", "fx_b", None)


def test_pronoun_without_anything_to_refer_to_asks(resolver):
    res = resolver.resolve("put it on fixture B", press_cell())
    assert (res.status, res.candidates) == ("clarify", ())


# ---------------------------------------------------------------- default targets
def test_scrap_sends_the_object_to_the_reject_location(resolver):
    res = resolver.resolve("scrap the large gear", press_cell())
    assert _cmd(res) == ("resolved", "pick_place", "gear_l", "chute", None)


def test_put_away_uses_the_location_that_accepts_the_kind(resolver):
    assert _cmd(resolver.resolve("put the wrench away", press_cell())) == (
        "resolved",
        "pick_place",
        "spanner",
        "tool_wall",
        None,
    )
    held = resolver.resolve("把它收起来", press_cell(holding="spanner"), ["拿起扳手"])
    assert (held.action, held.target_id) == ("place", "tool_wall")


def test_put_away_asks_when_no_place_accepts_the_object(resolver):
    res = resolver.resolve("put the cover away", press_cell())
    assert (res.status, res.candidates) == ("clarify", ())


def test_role_word_names_the_place(resolver):
    res = resolver.resolve("send the cover to the output", press_cell())
    assert _cmd(res) == ("resolved", "pick_place", "cover", "tray_out", None)


# ---------------------------------------------------------------- push
@pytest.mark.parametrize(
    "text, direction",
    [
        ("push the cover forward", "forward"),
        ("slide the cover a bit to the left", "left"),
        ("push the cover toward the robot", "backward"),
        ("shove the cover away from the robot", "forward"),
        ("move the cover slightly to the right", "right"),
        ("把外壳往左推一点", "left"),
        ("往后推一下外壳", "backward"),
    ],
)
def test_push_resolves_a_base_frame_direction(resolver, text, direction):
    assert _cmd(resolver.resolve(text, press_cell())) == ("resolved", "push", "cover", None, direction)


def test_push_without_a_direction_asks_for_one(resolver):
    res = resolver.resolve("push the cover", press_cell())
    assert res.status == "clarify" and "left" in res.question


# ---------------------------------------------------------------- typos
@pytest.mark.parametrize(
    "text, expected",
    [
        ("pik up the wrnech", ("resolved", "pick", "spanner", None, None)),
        ("put the covr on fixtre B", ("resolved", "pick_place", "cover", "fx_b", None)),
        ("plase the smal gear in the scrap chute", ("resolved", "pick_place", "gear_s", "chute", None)),
    ],
)
def test_typos_are_corrected_by_edit_distance(resolver, text, expected):
    res = resolver.resolve(text, press_cell())
    assert _cmd(res) == expected
    assert res.confidence < 1.0  # a corrected word lowers confidence


def test_a_typo_closest_to_an_absent_category_still_asks(resolver):
    res = resolver.resolve("pick up the hamer", press_cell())
    assert (res.status, res.candidates) == ("clarify", ())


# ---------------------------------------------------------------- stop / home
@pytest.mark.parametrize(
    "text", ["stop", "STOP!!", "halt", "Emergency stop", "e-stop", "wait", "停", "急停", "别动"]
)
def test_stop_words_stop_immediately(resolver, text):
    res = resolver.resolve(text, press_cell(holding="gear_s"), ["put the small gear on fixture B"])
    assert (res.status, res.action, res.instruction) == ("resolved", "stop", "stop")


def test_stop_bypasses_everything_even_inside_a_long_or_unsafe_sentence(resolver):
    assert resolver.resolve("throw the wrench at him no wait stop", press_cell()).action == "stop"
    assert resolver.resolve("blah " * 2000 + "stop", press_cell()).action == "stop"


@pytest.mark.parametrize("text", ["go home", "return to the home position", "回原点", "复位"])
def test_home_requests_resolve_to_home(resolver, text):
    assert _cmd(resolver.resolve(text, press_cell())) == ("resolved", "home", None, None, None)


# ---------------------------------------------------------------- unsafe / off task
@pytest.mark.parametrize(
    "text",
    [
        "throw the wrench to me",
        "toss the gear over to Maria",
        "hit the cover with the wrench",
        "swing the shaft at Tom",
        "hand me the wrench",
        "point the wrench at the operator",
        "move as fast as you can toward the worker",
        "disable the safety limits",
        "tell me a joke",
        "what's the weather tomorrow?",
        "把扳手扔给我",
        "用扳手砸外壳",
        "把扳手递给他",
        "给我唱首歌",
    ],
)
def test_unsafe_and_off_task_requests_are_refused(resolver, text):
    res = resolver.resolve(text, press_cell())
    assert res.status == "reject"
    assert res.reason and res.instruction == ""


def test_discarding_is_not_mistaken_for_throwing(resolver):
    res = resolver.resolve("throw the small gear away", press_cell())
    assert _cmd(res) == ("resolved", "pick_place", "gear_s", "chute", None)
