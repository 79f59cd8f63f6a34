"""FramePairer: each scene frame goes with the wrist frame nearest to it in time, whatever order the
two cameras' frames arrive in."""

from __future__ import annotations

from vla_ros.policy.frame_pairing import FramePairer, Stamped


def _pairs(ready) -> list[tuple[str, str | None]]:
    return [(p.scene.item, None if p.wrist is None else p.wrist.item) for p in ready]


def test_a_scene_frame_pairs_at_once_with_a_wrist_frame_stamped_at_or_after_it():
    pairer = FramePairer()
    assert pairer.add_wrist(Stamped("w1", 1.00)) == []
    assert _pairs(pairer.add_scene(Stamped("s1", 1.00))) == [("s1", "w1")]


def test_a_scene_frame_waits_for_the_next_wrist_frame_and_takes_the_nearer_of_the_two():
    pairer = FramePairer()
    pairer.add_wrist(Stamped("w0", 0.90))
    assert pairer.add_scene(Stamped("s1", 1.00)) == []  # w0 is older: wait for the next one
    assert _pairs(pairer.add_wrist(Stamped("w1", 1.02))) == [("s1", "w1")]  # 0.02 s beats 0.10 s
    pairer.add_scene(Stamped("s2", 1.20))
    assert _pairs(pairer.add_wrist(Stamped("w2", 1.50))) == [("s2", "w1")]  # the older one is nearer


def test_a_superseded_scene_frame_goes_on_with_the_wrist_frame_it_had_or_none():
    pairer = FramePairer()
    assert pairer.add_scene(Stamped("s1", 1.0)) == []
    assert _pairs(pairer.add_scene(Stamped("s2", 1.2))) == [("s1", None)]  # no wrist frame ever came
    pairer.add_wrist(Stamped("w1", 1.1))  # nearer to s2 than nothing: pairs it
    pairer.add_scene(Stamped("s3", 1.4))
    assert _pairs(pairer.add_scene(Stamped("s4", 1.6))) == [("s3", "w1")]


def test_clear_forgets_the_waiting_scene_frame():
    pairer = FramePairer()
    pairer.add_scene(Stamped("s1", 1.0))
    pairer.clear()
    assert pairer.add_wrist(Stamped("w1", 1.0)) == []
