"""Numbers an operator says about parts and moves (issue 28): the last digits of a part number (尾号71,
"ending in 123", "the 05"), numbers in the plural ("the 5520s"), number words as labels ("unit two",
but "the wheat one" is no No. 1), how far to push ("right like 5 cm", "again, a bit more", 再推一下), a
name's noun before its measure ("lens blank 65 mm" is a blank), "that's next to", "can u", and "put
the file away" in a shop with a file. A cell of our own, in both languages."""

from __future__ import annotations

import pytest
from scene_builders import cmd as _cmd
from scene_builders import loc as _loc
from scene_builders import obj as _obj

from vla_ros.disambiguation import InstructionResolver, Scene

SHOP = {
    "objects": [
        _obj("seal_71", "mechanical seal", "seal", (0.40, 0.30), part_number="MS-2271"),
        _obj("seal_38", "mechanical seal", "seal", (0.40, 0.15), part_number="MS-2238"),
        _obj("brg_6205", "ball bearing 6205", "bearing", (0.55, 0.30)),
        _obj("brg_6310", "ball bearing 6310", "bearing", (0.55, 0.15)),
        _obj("pad_5520", "rear pad set", "brake_pad", (0.55, -0.05), part_number="BP-5520-R"),
        _obj("pad_4480", "rear pad set", "brake_pad", (0.55, -0.20), part_number="BP-4480-R"),
        _obj("blank_65", "lens blank 65 mm", "lens", (0.70, 0.20), diameter_mm=65),
        _obj("blank_70", "lens blank 70 mm", "lens", (0.70, 0.00), diameter_mm=70),
        _obj("rail", "aluminium rail", "rail", (0.30, -0.30)),
        _obj("file", "flat file", "file", (0.25, 0.35), kind="tool"),
        _obj("tray_wheat", "wheat tray", "tray", (0.30, -0.10)),
        _obj("tray_rye", "rye tray", "tray", (0.35, 0.05)),
    ],
    "locations": [
        _loc("unit_1", "print unit 1", "station", (0.80, 0.35)),
        _loc("unit_2", "print unit 2", "station", (0.80, -0.35)),
        _loc("rack", "output rack", "rack", (0.15, -0.40)),
        _loc("tools", "tool rack", "rack", (0.15, 0.40), accepts=["tool"]),
        _loc("edger", "lens edger", "machine", (0.85, 0.00)),
    ],
}


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


@pytest.fixture(scope="module")
def shop() -> Scene:
    return Scene.from_dict(SHOP)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("把料号尾号是71的那个放到输出架上", ("seal_71", "rack")),
        ("put the seal ending in 38 on the output rack", ("seal_38", "rack")),
        ("the 05, put it on the output rack", ("brg_6205", "rack")),
        ("the 5520s go on the output rack", ("pad_5520", "rack")),
        ("put the bigger blank in the edger", ("blank_70", "edger")),
        ("put the file away", ("file", "tools")),
    ],
)
def test_numbers_and_nouns_that_say_which_part(resolver, shop, text, expected) -> None:
    assert _cmd(resolver.resolve(text, shop)) == ("resolved", "pick_place", *expected)


def test_a_suffix_no_number_ends_with_is_asked(resolver, shop) -> None:
    res = resolver.resolve("put the seal ending in 99 on the output rack", shop)
    assert res.status == "clarify" and not res.forwarded


@pytest.mark.parametrize(
    ("text", "target"), [("uh move over to unit two", "unit_2"), ("go to unit 1", "unit_1")]
)
def test_a_number_word_after_a_name_is_its_label(resolver, shop, text, target) -> None:
    assert _cmd(resolver.resolve(text, shop)) == ("resolved", "move_to", None, target)


def test_one_after_a_name_word_is_still_the_one(resolver, shop) -> None:
    res = resolver.resolve("same with the wheat one", shop, ["put the rye tray on the output rack"])
    assert _cmd(res) == ("resolved", "pick_place", "tray_wheat", "rack")


@pytest.mark.parametrize(
    ("history", "text", "direction"),
    [
        ((), "slide the rail right like 5 cm", "right"),
        ((), "push the rail forward about 3 cm", "forward"),
        (("push the rail left a touch",), "again, bit more", "left"),
        (("把铝导轨往前推一点",), "再推一下", "forward"),
        (("把铝导轨往前推一点",), "往左推一下", "left"),
    ],
)
def test_how_far_is_not_which_and_a_push_repeats(resolver, shop, history, text, direction) -> None:
    res = resolver.resolve(text, shop, list(history))
    assert (res.status, res.action, res.object_id, res.direction) == ("resolved", "push", "rail", direction)


def test_pushing_a_named_part_again_without_a_way_asks_which_way(resolver, shop) -> None:
    res = resolver.resolve("推一下铝导轨", shop, ["把铝导轨往前推一点"])
    assert res.status == "clarify" and not res.forwarded


def test_text_speak_and_relative_clauses(resolver, shop) -> None:
    res = resolver.resolve("can u pick up the seal", shop)
    assert res.status == "clarify" and set(res.candidates) == {"seal_71", "seal_38"}
    res = resolver.resolve("put the tray that's next to the output rack on unit 2", shop)
    assert _cmd(res) == ("resolved", "pick_place", "tray_wheat", "unit_2")


def test_digits_two_numbers_end_with_are_asked_with_both(resolver) -> None:
    extra = _obj("pad_9938", "front pad set", "brake_pad", (0.20, 0.0), part_number="BP-9938-F")
    scene = Scene.from_dict({**SHOP, "objects": [*SHOP["objects"], extra]})
    res = resolver.resolve("把尾号38的那个放到输出架上", scene)
    assert res.status == "clarify" and set(res.candidates) == {"seal_38", "pad_9938"}


BENDS = {
    "objects": [
        _obj("ubend_38", "3/8 inch return bend", "return_bend", (0.40, 0.20), diameter_mm=9.5),
        _obj("ubend_12", "1/2 inch return bend", "return_bend", (0.40, -0.20), diameter_mm=12.7),
        _obj("wafer_a", "test wafer", "wafer", (0.60, 0.20), thickness_mm=0.775),
        _obj("wafer_b", "dummy wafer", "wafer", (0.60, -0.20), thickness_mm=0.725, defect="edge chip"),
        _obj("bag_1kg", "seed bag 1 kg", "seed_bag", (0.30, 0.35), mass_g=1000),
        _obj("bag_25kg", "seed bag 2.5 kg", "seed_bag", (0.30, -0.35), mass_g=2500),
    ],
    "locations": [
        _loc("jig", "coil jig", "fixture", (0.80, 0.30)),
        _loc("metrology", "metrology station", "station", (0.80, -0.30)),
    ],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the return bend under 10 mm goes on the coil jig", ("ubend_38", "jig")),
        ("put the bend that's over 10 mm across on the coil jig", ("ubend_12", "jig")),
        ("whichever bend is less than 10 millimetres, coil jig", ("ubend_38", "jig")),
        ("put the half-inch one on the coil jig", ("ubend_12", "jig")),
        ("把厚度超过0.75毫米的wafer放到metrology station", ("wafer_a", "metrology")),
        ("把两公斤以上的那袋放到线圈夹具上", ("bag_25kg", "jig")),
        ("take the wafer without the chipped edge to metrology", ("wafer_a", "metrology")),
        ("take the wafer that doesn't have the chipped edge to metrology", ("wafer_a", "metrology")),
    ],
)
def test_bounds_fractions_and_what_a_part_lacks(resolver, text, expected) -> None:
    assert _cmd(resolver.resolve(text, Scene.from_dict(BENDS))) == ("resolved", "pick_place", *expected)


def test_a_bound_no_measure_of_theirs_meets_is_asked(resolver) -> None:
    res = resolver.resolve("the return bend under 5 mm goes on the coil jig", Scene.from_dict(BENDS))
    assert res.status == "clarify" and not res.forwarded


def test_a_comparative_with_the_noun_of_a_measure_picks_its_extreme(resolver) -> None:
    scene = Scene.from_dict({
        "objects": [_obj("r05", "0.5 mm blue refill", "refill", (0.4, 0.2), tip_mm=0.5),
                    _obj("r07", "0.7 mm black refill", "refill", (0.4, -0.2), tip_mm=0.7)],
        "locations": [_loc("jig", "assembly jig", "fixture", (0.7, 0.0))],
    })  # fmt: skip
    assert _cmd(resolver.resolve("Grab the refill with the bigger tip.", scene)) == (
        "resolved",
        "pick",
        "r07",
        None,
    )
    assert _cmd(resolver.resolve("grab the refill with the smaller tip", scene)) == (
        "resolved",
        "pick",
        "r05",
        None,
    )


CHAINS = {
    "objects": [
        _obj("chain_8", "112-link 8-speed chain", "chain", (0.40, 0.20)),
        _obj("chain_11", "116-link 11-speed chain", "chain", (0.40, -0.20)),
        _obj("link_q", "quick link", "link", (0.55, 0.00)),
        _obj("imp_3", "3-blade impeller", "impeller", (0.60, 0.25)),
        _obj("imp_5", "5-blade impeller", "impeller", (0.60, -0.25)),
        _obj("shim_a", "shim 1.8 mm", "shim", (0.30, 0.35), thickness_mm=1.8),
        _obj("shim_b", "shim 2.4 mm", "shim", (0.30, -0.35), thickness_mm=2.4),
    ],
    "locations": [
        _loc("oil", "oil dip tank", "station", (0.80, 0.30)),
        _loc("conv", "outfeed conveyor", "conveyor", (0.80, -0.30)),
    ],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a numeral before a word is the number the cell's names carry: 八速 is the 8-speed chain (速 also
        # glosses "quick", which the quick link is not), 五叶 the 5-blade impeller
        ("把八速的放进浸油槽", ("chain_8", "oil")),
        ("十一速那条放进浸油槽", ("chain_11", "oil")),
        ("五叶的叶轮放出料输送线上", ("imp_5", "conv")),
        # a decimal said in words
        ("比一点八毫米厚的垫片放进浸油槽", ("shim_b", "oil")),
        ("两点四毫米的垫片放出料输送线上", ("shim_b", "conv")),
    ],
)
def test_numerals_the_cell_numbers_its_names_with_and_decimals_in_words(resolver, text, expected) -> None:
    assert _cmd(resolver.resolve(text, Scene.from_dict(CHAINS))) == ("resolved", "pick_place", *expected)


def test_a_numeral_the_cell_does_not_number_with_stays_a_word() -> None:
    from vla_ros.disambiguation.resolver import scene_numbered_words

    assert scene_numbered_words("把三通放好", frozenset({"8"})) == "把三通放好"
    assert scene_numbered_words("把八速的放好", frozenset({"8"})) == "把8速的放好"
    assert scene_numbered_words("第八速的", frozenset({"8"})) == "第八速的"


JETS = {
    "objects": [
        _obj("jet_110", "#110 main jet", "jet", (0.40, 0.20)),
        _obj("jet_120", "#120 main jet", "jet", (0.40, 0.00)),
        _obj("fit_a", "JIC male fitting", "fitting", (0.55, 0.20), part_number="0403-08-08"),
        _obj("fit_b", "BSP swivel fitting", "fitting", (0.55, -0.20), part_number="2BS-0806-12"),
        _obj("cup_a", "52 mm cup", "cup", (0.30, -0.30), lot="L23-0412"),
        _obj("cup_b", "54 mm cup", "cup", (0.30, 0.30), lot="L23-0417"),
    ],
    "locations": [
        _loc("tray", "parts tray", "tray", (0.80, 0.30)),
        _loc("laser", "laser marker", "station", (0.8, -0.3)),
    ],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("put the one-twenty on the parts tray", ("jet_120", "tray")),  # hundreds said as two numbers
        ("the fitting ending oh-eight goes on the parts tray", ("fit_a", "tray")),  # "oh" among digits
        ("the fitting ending twelve goes on the laser marker", ("fit_b", "laser")),  # "ending" without "in"
        ("把批号末四位是0412的那个cup放到laser marker", ("cup_a", "laser")),  # a lot number's last digits
    ],
)
def test_numbers_said_in_pieces_and_the_last_digits_of_any_number(resolver, text, expected) -> None:
    assert _cmd(resolver.resolve(text, Scene.from_dict(JETS))) == ("resolved", "pick_place", *expected)


def test_an_answer_said_as_hundreds_picks_the_jet(resolver) -> None:
    scene = Scene.from_dict(JETS)
    asked = resolver.resolve("jet to the parts tray", scene)
    assert asked.status == "clarify" and set(asked.candidates) == {"jet_110", "jet_120"}
    assert _cmd(resolver.answer(asked, "one-twenty", scene)) == ("resolved", "pick_place", "jet_120", "tray")


def test_spoken_hundreds_and_oh_become_digits() -> None:
    from vla_ros.disambiguation.resolver import normalise_english_numbers

    assert normalise_english_numbers("the one-seventies") == "the 170s"
    assert normalise_english_numbers("ending oh-nine") == "ending 09"
    assert normalise_english_numbers("bin two") == "bin two"
