"""The workcell's tasks: what to do, how to say it, and how to tell it was done.

A task is chosen from the layout with the same seeded generator, so ``reset(seed, task)`` is
reproducible. Success is decided on a :class:`SimState` snapshot (positions only), which keeps the
checks testable on constructed states without stepping physics.

Instructions use the canonical English form the disambiguation node forwards:
``put the {part} {in|on} the {location}``, ``push the {part} {to the left|to the right|forward|backward}``,
``move to the {location}`` (see :func:`instruction_text`). ``move_to_part`` says ``move to the {part}``
in the same form: the hand goes to hover above a part instead of a target region. It is a workcell task for
demonstrations and evaluation; the disambiguation node's move_to names target regions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.sim.layout import Layout

TASK_NAMES = ("pick_place", "push", "move_to", "move_to_part")
MAX_EPISODE_STEPS = 60  # an episode that has not succeeded by then has failed

# Unit vectors in the robot base frame (FORMAT.md directions; up/down make no sense for a push).
PUSH_DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (0.0, 1.0),
    "right": (0.0, -1.0),
    "forward": (1.0, 0.0),
    "backward": (-1.0, 0.0),
}
_PUSH_PHRASES = {"left": "to the left", "right": "to the right", "forward": "forward", "backward": "backward"}

PUSH_SUCCESS_DISTANCE_M = 0.08
# How far the expert plans to move the part: the success distance plus slack for slip.
PUSH_TRAVEL_M = 0.11
# Clearance between the pusher's path and other parts when choosing a push.
PUSH_CLEARANCE_M = 0.035
# Part centres must stay where the arm reaches comfortably, before and after a push.
PUSH_REACH_MIN_M = (0.32, -0.30)
PUSH_REACH_MAX_M = (0.70, 0.30)

# A part counts as resting (not carried, not thrown) below its height plus this margin.
RESTING_MARGIN_M = 0.02
# move_to: the end effector within this horizontal radius of the location centre, between these heights.
MOVE_TO_RADIUS_M = 0.04
MOVE_TO_HEIGHT_RANGE_M = (0.03, 0.25)
# move_to_part: tighter than a region (a part is 2-7 cm across; this is where a grasp could start), and
# high enough that the fingertips (~1.1 cm below the grasp point) clear a 3 cm part.
MOVE_TO_PART_RADIUS_M = 0.025
MOVE_TO_PART_HEIGHT_RANGE_M = (0.06, 0.25)


@dataclass
class SimState:
    """What success checks need: positions in the robot base frame and what is held."""

    part_positions_m: dict[str, np.ndarray]
    ee_position_m: np.ndarray
    holding: str | None = None


@dataclass
class Task:
    """One episode's goal. ``part_id``/``location_id``/``direction`` are set as the task needs."""

    name: str
    part_id: str = ""
    location_id: str = ""
    direction: str = ""
    instruction: str = ""
    start_part_positions_m: dict[str, np.ndarray] = field(default_factory=dict)

    def success(self, state: SimState, layout: Layout) -> bool:
        if self.name == "pick_place":
            return _placed_in_region(self, state, layout)
        if self.name == "push":
            return _pushed_far_enough(self, state, layout)
        if self.name == "move_to":
            return _ee_above_location(self, state, layout)
        if self.name == "move_to_part":
            return _ee_above_part(self, state)
        raise ValueError(f"unknown task {self.name!r}; tasks are {TASK_NAMES}")

    def push_progress_m(self, state: SimState) -> float:
        """Signed displacement of the pushed part along the push direction since reset."""
        start = self.start_part_positions_m[self.part_id][:2]
        now = np.asarray(state.part_positions_m[self.part_id])[:2]
        return float(np.dot(now - start, PUSH_DIRECTIONS[self.direction]))


def instruction_text(
    action: str, part_name: str = "", location_name: str = "", preposition: str = "in", direction: str = ""
) -> str:
    """The canonical English instruction for an action and its arguments."""
    if action == "pick_place":
        return f"put the {part_name} {preposition} the {location_name}"
    if action == "push":
        return f"push the {part_name} {_PUSH_PHRASES[direction]}"
    if action == "move_to":
        return f"move to the {location_name}"
    if action == "move_to_part":
        return f"move to the {part_name}"
    raise ValueError(f"no instruction form for action {action!r}; tasks are {TASK_NAMES}")


def sample_task(name: str, layout: Layout, rng: np.random.Generator) -> Task | None:
    """Choose a task's arguments from the layout, or None when this layout cannot host the task."""
    if name == "pick_place":
        part = layout.parts[int(rng.integers(len(layout.parts)))]
        location = layout.locations[int(rng.integers(len(layout.locations)))]
        text = instruction_text(name, part.name, location.name, location.preposition)
        return Task(name, part_id=part.id, location_id=location.id, instruction=text)
    if name == "move_to":
        location = layout.locations[int(rng.integers(len(layout.locations)))]
        return Task(
            name, location_id=location.id, instruction=instruction_text(name, location_name=location.name)
        )
    if name == "move_to_part":
        part = layout.parts[int(rng.integers(len(layout.parts)))]
        return Task(name, part_id=part.id, instruction=instruction_text(name, part.name))
    if name == "push":
        options = [
            (part.id, direction)
            for part in layout.parts
            for direction in PUSH_DIRECTIONS
            if _push_is_clear(layout, part.id, direction)
        ]
        if not options:
            return None
        part_id, direction = options[int(rng.integers(len(options)))]
        part = layout.part(part_id)
        return Task(
            name,
            part_id=part_id,
            direction=direction,
            instruction=instruction_text(name, part.name, direction=direction),
        )
    raise ValueError(f"unknown task {name!r}; tasks are {TASK_NAMES}")


def push_start_xy(layout: Layout, part_id: str, direction: str, standoff_m: float = 0.03) -> np.ndarray:
    """Where the pusher starts: behind the part, opposite the push direction."""
    part = layout.part(part_id)
    unit = np.asarray(PUSH_DIRECTIONS[direction])
    return np.asarray(part.xy_m) - unit * (part.footprint_radius_m + standoff_m)


def _push_is_clear(layout: Layout, part_id: str, direction: str) -> bool:
    part = layout.part(part_id)
    unit = np.asarray(PUSH_DIRECTIONS[direction])
    start = push_start_xy(layout, part_id, direction)
    end = np.asarray(part.xy_m) + unit * (PUSH_TRAVEL_M + part.footprint_radius_m)
    low, high = np.asarray(PUSH_REACH_MIN_M), np.asarray(PUSH_REACH_MAX_M)
    if np.any(start < low) or np.any(start > high) or np.any(end < low) or np.any(end > high):
        return False
    for other in layout.parts:
        if other.id == part_id:
            continue
        gap = _point_segment_distance(np.asarray(other.xy_m), start, end)
        if gap < other.footprint_radius_m + part.footprint_radius_m + PUSH_CLEARANCE_M:
            return False
    return True


def _point_segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(point - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(point - (a + t * ab)))


def _resting(task: Task, state: SimState, layout: Layout) -> bool:
    z = float(state.part_positions_m[task.part_id][2])
    return state.holding != task.part_id and z < layout.part(task.part_id).height_m + RESTING_MARGIN_M


def _placed_in_region(task: Task, state: SimState, layout: Layout) -> bool:
    location = layout.location(task.location_id)
    xy = np.asarray(state.part_positions_m[task.part_id])[:2]
    inside = bool(np.all(np.abs(xy - np.asarray(location.xy_m)) <= location.half_size_m))
    return inside and _resting(task, state, layout)


def _pushed_far_enough(task: Task, state: SimState, layout: Layout) -> bool:
    return task.push_progress_m(state) >= PUSH_SUCCESS_DISTANCE_M and _resting(task, state, layout)


def _ee_above_location(task: Task, state: SimState, layout: Layout) -> bool:
    xy = layout.location(task.location_id).xy_m
    return _ee_hovers_over(state, xy, MOVE_TO_RADIUS_M, MOVE_TO_HEIGHT_RANGE_M)


def _ee_above_part(task: Task, state: SimState) -> bool:
    xy = np.asarray(state.part_positions_m[task.part_id])[:2]
    return _ee_hovers_over(state, xy, MOVE_TO_PART_RADIUS_M, MOVE_TO_PART_HEIGHT_RANGE_M)


def _ee_hovers_over(state: SimState, xy, radius_m: float, height_range_m: tuple[float, float]) -> bool:
    ee = np.asarray(state.ee_position_m)
    near = float(np.linalg.norm(ee[:2] - np.asarray(xy))) <= radius_m
    low, high = height_range_m
    return near and low <= float(ee[2]) <= high
