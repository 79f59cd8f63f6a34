"""Layouts and task rules of the simulated workcell, checked without physics."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.sim.layout import PART_CATALOGUE, PART_MIN_SEPARATION_M, PartSpec, sample_layout
from vla_ros.sim.tasks import (
    MOVE_TO_PART_RADIUS_M,
    MOVE_TO_RADIUS_M,
    PUSH_SUCCESS_DISTANCE_M,
    SimState,
    Task,
    instruction_text,
    sample_task,
)


def _layout(seed: int = 0):
    return sample_layout(np.random.default_rng(seed))


def test_same_seed_gives_the_same_layout_and_other_seeds_differ():
    a, b, c = _layout(7), _layout(7), _layout(8)
    assert [(p.id, p.xy_m, p.size) for p in a.parts] == [(p.id, p.xy_m, p.size) for p in b.parts]
    assert [(loc.id, loc.xy_m) for loc in a.locations] == [(loc.id, loc.xy_m) for loc in b.locations]
    assert [(p.id, p.xy_m) for p in a.parts] != [(p.id, p.xy_m) for p in c.parts]


def test_parts_have_distinct_colours_and_are_spaced_apart():
    for seed in range(30):
        layout = _layout(seed)
        colors = [p.color for p in layout.parts]
        assert len(set(colors)) == len(colors)
        assert len({p.id for p in layout.parts}) == len(layout.parts)
        for i, first in enumerate(layout.parts):
            for second in layout.parts[i + 1 :]:
                gap = np.linalg.norm(np.subtract(first.xy_m, second.xy_m))
                assert gap >= PART_MIN_SEPARATION_M


def test_every_part_fits_the_open_gripper_and_stays_below_the_hand():
    for category, sizes in PART_CATALOGUE.items():
        for size, geometry in sizes.items():
            part = PartSpec(f"{category}_red", "red", category, "red", size, (0.5, 0.0), 0.0, dict(geometry))
            assert part.height_m <= 0.03, (category, size)
            across_fingers = 2 * (
                geometry["half_extents_m"][1] if geometry["shape"] == "box" else geometry["radius_m"]
            )
            assert across_fingers < 0.07, (category, size)


def test_instructions_name_the_part_and_the_goal():
    assert (
        instruction_text("pick_place", "red gear", "reject bin", "in") == "put the red gear in the reject bin"
    )
    assert instruction_text("push", "blue bolt", direction="left") == "push the blue bolt to the left"
    assert instruction_text("move_to", location_name="inspection station") == "move to the inspection station"
    assert instruction_text("move_to_part", "green nut") == "move to the green nut"
    with pytest.raises(ValueError, match="no instruction form"):
        instruction_text("juggle")


def test_sampled_tasks_refer_to_things_in_the_layout():
    rng = np.random.default_rng(3)
    for _ in range(20):
        layout = sample_layout(rng)
        pick = sample_task("pick_place", layout, rng)
        part, location = layout.part(pick.part_id), layout.location(pick.location_id)
        assert part.name in pick.instruction and location.name in pick.instruction
        move = sample_task("move_to", layout, rng)
        assert move.instruction == f"move to the {layout.location(move.location_id).name}"
        reach = sample_task("move_to_part", layout, rng)
        assert reach.instruction == f"move to the {layout.part(reach.part_id).name}"
        push = sample_task("push", layout, rng)
        if push is not None:
            assert push.instruction.startswith(f"push the {layout.part(push.part_id).name}")


def _state(layout, **positions) -> SimState:
    parts = {p.id: np.array([*p.xy_m, p.height_m / 2]) for p in layout.parts}
    parts.update(positions.get("parts", {}))
    return SimState(
        part_positions_m=parts,
        ee_position_m=np.asarray(positions.get("ee", [0.45, 0.0, 0.3])),
        holding=positions.get("holding"),
    )


def test_pick_place_succeeds_only_when_the_part_rests_inside_the_region_released():
    layout = _layout(1)
    part, location = layout.parts[0], layout.locations[0]
    task = Task("pick_place", part_id=part.id, location_id=location.id)
    inside = np.array([location.xy_m[0] + 0.03, location.xy_m[1] - 0.03, part.height_m / 2])
    assert not task.success(_state(layout), layout)
    assert task.success(_state(layout, parts={part.id: inside}), layout)
    assert not task.success(_state(layout, parts={part.id: inside}, holding=part.id), layout)
    carried = inside + np.array([0.0, 0.0, 0.1])
    assert not task.success(_state(layout, parts={part.id: carried}), layout)
    outside = inside + np.array([0.08, 0.0, 0.0])
    assert not task.success(_state(layout, parts={part.id: outside}), layout)


def test_push_succeeds_after_moving_far_enough_in_the_asked_direction_only():
    layout = _layout(2)
    part = layout.parts[0]
    start = np.array([*part.xy_m, part.height_m / 2])
    task = Task("push", part_id=part.id, direction="left", start_part_positions_m={part.id: start})
    far_left = start + np.array([0.0, PUSH_SUCCESS_DISTANCE_M + 0.005, 0.0])
    short_left = start + np.array([0.0, PUSH_SUCCESS_DISTANCE_M - 0.01, 0.0])
    far_right = start - np.array([0.0, PUSH_SUCCESS_DISTANCE_M + 0.05, 0.0])
    assert task.success(_state(layout, parts={part.id: far_left}), layout)
    assert not task.success(_state(layout, parts={part.id: short_left}), layout)
    assert not task.success(_state(layout, parts={part.id: far_right}), layout)
    assert task.push_progress_m(_state(layout, parts={part.id: far_right})) < 0


def test_move_to_succeeds_with_the_hand_above_the_location():
    layout = _layout(4)
    location = layout.locations[0]
    task = Task("move_to", location_id=location.id)
    above = [location.xy_m[0], location.xy_m[1], 0.1]
    beside = [location.xy_m[0] + MOVE_TO_RADIUS_M + 0.01, location.xy_m[1], 0.1]
    too_high = [location.xy_m[0], location.xy_m[1], 0.4]
    assert task.success(_state(layout, ee=above), layout)
    assert not task.success(_state(layout, ee=beside), layout)
    assert not task.success(_state(layout, ee=too_high), layout)


def test_move_to_part_succeeds_with_the_hand_above_where_the_part_is_now():
    layout = _layout(4)
    part = layout.parts[0]
    task = Task("move_to_part", part_id=part.id)
    x, y = part.xy_m
    assert task.success(_state(layout, ee=[x, y, 0.1]), layout)
    assert not task.success(_state(layout, ee=[x + MOVE_TO_PART_RADIUS_M + 0.005, y, 0.1]), layout)
    # Low enough for the fingertips to strike the part, or too high to count as "at" it.
    assert not task.success(_state(layout, ee=[x, y, 0.03]), layout)
    assert not task.success(_state(layout, ee=[x, y, 0.4]), layout)
    # Knocked 5 cm aside: the hand must be above the part, not above where it was.
    moved = np.array([x + 0.05, y, part.height_m / 2])
    assert not task.success(_state(layout, ee=[x, y, 0.1], parts={part.id: moved}), layout)
    assert task.success(_state(layout, ee=[x + 0.05, y, 0.1], parts={part.id: moved}), layout)
