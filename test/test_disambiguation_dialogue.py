"""Issue 28, item 3: the dialogue state (ROS-free, clock passed in) behind pronouns, ellipsis,
"the other one" and corrections across several turns, in both languages."""

from __future__ import annotations

import pytest

from vla_ros.disambiguation import DialogueState, InstructionResolver, Scene

CELL = Scene.from_dict(
    {
        "objects": [
            {"id": "gear_l", "name": "spur gear", "kind": "part", "category": "gear", "color": "green",
             "position": [0.5, 0.25, 0.01]},
            {"id": "gear_r", "name": "spur gear", "kind": "part", "category": "gear", "color": "green",
             "position": [0.5, -0.25, 0.01]},
            {"id": "nut_1", "name": "hex nut", "kind": "part", "category": "nut",
             "position": [0.35, 0.0, 0.01]},
        ],
        "locations": [
            {"id": "bin_a", "name": "bin A", "category": "bin", "position": [0.7, 0.3, 0]},
            {"id": "bin_b", "name": "bin B", "category": "bin", "position": [0.7, -0.3, 0]},
        ],
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def resolver() -> InstructionResolver:
    return InstructionResolver()


def _say(resolver, state: DialogueState, text: str, now_s: float, scene: Scene = CELL):
    state.set_time(now_s)
    res = resolver.resolve(text, scene, state)
    state.record(res, now_s)
    return res


def _command(res) -> tuple:
    return (res.status, res.action, res.object_id, res.target_id)


def test_it_refers_to_the_last_thing_acted_on_across_several_turns(resolver) -> None:
    state = DialogueState()
    _say(resolver, state, "put the nut in bin A", 0.0)
    _say(resolver, state, "put the gear on the left in bin B", 1.0)
    assert _command(_say(resolver, state, "ok now put it in bin A", 2.0)) == (
        "resolved", "pick_place", "gear_l", "bin_a",
    )  # fmt: skip
    assert state.history_entities()[:2] == ("gear_l", "bin_a")


def test_ellipsis_reuses_the_last_command(resolver) -> None:
    state = DialogueState()
    _say(resolver, state, "put the nut in bin A", 0.0)
    assert _command(_say(resolver, state, "again, but to the other bin", 1.0)) == (
        "resolved", "pick_place", "nut_1", "bin_b",
    )  # fmt: skip
    assert _command(_say(resolver, state, "same for the gear on the right", 2.0)) == (
        "resolved", "pick_place", "gear_r", "bin_b",
    )  # fmt: skip
    assert _command(_say(resolver, state, "跟刚才一样", 3.0))[:2] == ("resolved", "pick_place")


def test_a_correction_replaces_the_last_command(resolver) -> None:
    state = DialogueState()
    _say(resolver, state, "pick up the gear on the left", 0.0)
    assert state.held_object == "gear_l"
    res = _say(resolver, state, "no, the other one", 1.0)
    assert _command(res) == ("resolved", "pick", "gear_r", None)
    assert res.corrects_previous
    assert [t.object_id for t in state.turns()] == ["gear_r"]
    assert state.corrections == 1 and state.held_object == "gear_r"


def test_turns_older_than_the_memory_are_forgotten(resolver) -> None:
    state = DialogueState(memory_s=60.0)
    _say(resolver, state, "put the nut in bin A", 0.0)
    assert _say(resolver, state, "put it in bin B", 30.0).object_id == "nut_1"
    res = _say(resolver, state, "put it in bin A", 200.0)
    assert res.status == "clarify"  # "it" after a long pause: ask, do not guess the old part


def test_the_pending_question_waits_for_its_timeout_on_the_given_clock(resolver) -> None:
    state = DialogueState(clarification_timeout_s=30.0)
    res = _say(resolver, state, "pick up the gear", 10.0)
    assert res.status == "clarify" and state.pending is not None
    assert state.expire(39.0) is None and state.pending is not None
    assert state.expire(41.0).resolution is res and state.pending is None


def test_history_strings_build_the_same_state(resolver) -> None:
    """The benchmark passes earlier sentences; they are resolved in turn into a state."""
    state = DialogueState.from_history(
        ["put the nut in bin A", "pick up the gear on the right"], CELL, resolver
    )
    assert [t.action for t in state.turns()] == ["pick_place", "pick"]
    assert state.held_object == "gear_r"
    res = resolver.resolve("put that one in bin B", CELL, ["pick up the gear on the right"])
    assert _command(res) == ("resolved", "pick_place", "gear_r", "bin_b")


def test_stop_and_home_leave_the_references_alone(resolver) -> None:
    state = DialogueState()
    _say(resolver, state, "put the nut in bin A", 0.0)
    _say(resolver, state, "stop", 1.0)
    _say(resolver, state, "go home", 2.0)
    assert _command(_say(resolver, state, "put it in bin B", 3.0)) == (
        "resolved",
        "pick_place",
        "nut_1",
        "bin_b",
    )
