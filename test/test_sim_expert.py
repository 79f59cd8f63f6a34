"""The scripted expert solves each task in the policy's action space, with bounded steps."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.action import Policy
from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES, ScriptedExpert, Workcell, run_episode


@pytest.fixture(scope="module")
def cell():
    workcell = Workcell()
    yield workcell
    workcell.close()


def test_expert_is_a_policy(cell):
    expert: Policy = ScriptedExpert(cell)
    assert expert.name == "scripted_expert"


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_succeeds_within_the_step_budget_with_bounded_deltas(cell, task):
    expert = ScriptedExpert(cell)
    actions: list[np.ndarray] = []
    for seed in (101, 202, 303):
        result = run_episode(
            cell, expert, seed, task, render=False, on_step=lambda _s, _i, a, _c: actions.append(a.vector)
        )
        assert result.success, f"{task} seed {seed}: {result.instruction} failed after {result.steps} steps"
        assert result.steps <= MAX_EPISODE_STEPS
        assert result.sim_time_s == pytest.approx(result.steps * cell.control_period_s, abs=1e-6)
    vectors = np.stack(actions)
    assert np.all(np.linalg.norm(vectors[:, :3], axis=1) <= expert.config.max_step_m + 1e-9)
    assert np.all(vectors[:, 3:6] == 0.0)
    assert set(np.unique(vectors[:, 6])) <= {0.0, 1.0}


def test_expert_sees_rendered_frames_in_the_closed_loop(cell):
    frames: list[np.ndarray] = []
    result = run_episode(
        cell, ScriptedExpert(cell), 7, "move_to", on_step=lambda _s, image, _a, _c: frames.append(image)
    )
    assert result.success
    assert len(frames) == result.steps
    assert frames[0].shape == (224, 224, 3) and frames[0].dtype == np.uint8


def test_expert_regrasps_after_the_part_is_knocked_away(cell):
    expert = ScriptedExpert(cell)
    instruction = cell.reset(404, "pick_place")
    part = cell.layout.part(cell.task.part_id)
    for _ in range(4):
        cell.apply_action(expert.predict_action(None, instruction).vector)
    # Move the part while the arm is on its way: the expert must follow it, not the old position.
    moved = cell.part_position(part.id) + np.array([0.0, 0.06 if part.xy_m[1] < 0 else -0.06, 0.0])
    cell.place_part(part.id, moved)
    steps = 4
    while not cell.success() and steps < MAX_EPISODE_STEPS:
        cell.apply_action(expert.predict_action(None, instruction).vector)
        steps += 1
    assert cell.success()


def test_pick_place_travels_open_low_and_closed_high(cell):
    """The gripper state must be readable from the arm's height: a camera-only policy trained on
    demonstrations where carry and approach heights overlapped closed its gripper in mid-air."""
    expert = ScriptedExpert(cell)
    cfg = expert.config
    assert cfg.carry_height_m - cfg.hover_height_m >= 0.1
    for seed in (11, 12, 13, 14):
        instruction = cell.reset(seed, "pick_place")
        home_xy = cell.ee_pose()[0][:2]
        phases: list[str] = []
        while not cell.success() and len(phases) < MAX_EPISODE_STEPS:
            ee = cell.ee_pose()[0]
            action = expert.predict_action(None, instruction)
            phases.append(expert.phase)
            if expert.phase == "approach" and ee[2] > cfg.hover_height_m + 0.02:
                # Straight down from home before any sideways motion.
                assert np.allclose(action.vector[:2], 0.0), f"seed {seed}: sideways at z {ee[2]:.3f}"
                assert np.linalg.norm(ee[:2] - home_xy) < 0.01
            elif expert.phase == "approach":
                assert ee[2] > cfg.hover_height_m - 0.02, f"seed {seed}: approach at z {ee[2]:.3f}"
            if expert.phase == "carry":
                assert action.vector[6] == 0.0
                assert ee[2] > cfg.carry_height_m - 0.03, f"seed {seed}: carry at z {ee[2]:.3f}"
            cell.apply_action(action.vector)
        assert cell.success(), f"seed {seed}: {instruction} failed"
        assert "carry" in phases and phases.index("approach") < phases.index("carry")


def _pick_place_trace(cell, expert, seed):
    """(phase, action vector, part held) per step of one pick_place episode."""
    trace = []

    def on_step(_step, _image, action, workcell):
        trace.append((action.extras["phase"], action.vector.copy(), workcell.holding()))

    result = run_episode(cell, expert, seed, "pick_place", render=False, on_step=on_step)
    return result, trace


def test_per_axis_moves_put_far_steps_on_exact_values(cell):
    """Far from its target every axis moves by exactly the step limit (argmax-friendly labels), where
    the default scales the 3-D step so its length is the limit."""
    from vla_ros.sim.expert import ExpertConfig

    limit = ExpertConfig().max_step_m
    for per_axis in (False, True):
        expert = ScriptedExpert(cell, ExpertConfig(per_axis_moves=per_axis))
        for seed in (21, 22, 23):
            result, trace = _pick_place_trace(cell, expert, seed)
            assert result.success, f"per_axis={per_axis} seed {seed}"
            moves = np.array([v[:3] for _, v, _ in trace])
            assert np.all(np.abs(moves) <= limit + 1e-9)
            if per_axis:
                # The cross and the carry move on two axes at once, each by the full limit.
                diagonal = np.sum(np.isclose(np.abs(moves[:, :2]), limit).all(axis=1))
                assert diagonal >= 1, f"seed {seed}: no step moved by the limit on both x and y"
            else:
                assert np.all(np.linalg.norm(moves, axis=1) <= limit + 1e-9)


def test_close_until_held_lifts_on_the_first_step_the_part_is_held(cell):
    from vla_ros.sim.expert import ExpertConfig

    default = ExpertConfig()
    expert = ScriptedExpert(cell, ExpertConfig(close_until_held=True))
    for seed in (31, 32, 33):
        result, trace = _pick_place_trace(cell, expert, seed)
        assert result.success, f"seed {seed}"
        phases = [phase for phase, _, _ in trace]
        first_close, first_lift = phases.index("close"), phases.index("lift")
        assert 1 <= first_lift - first_close < default.close_steps, f"seed {seed}: {phases}"
        assert trace[first_lift][2] == cell.task.part_id
        assert trace[first_lift][1][2] > 0 and trace[first_lift][1][6] == 0.0  # up, still closed


def test_close_lift_rises_while_the_fingers_close_and_still_grasps(cell):
    """With close_lift_m no step with the gripper closed is a zero motion: the frames while the fingers
    close say "up slowly", the ones after the grasp holds "up"."""
    from vla_ros.sim.expert import ExpertConfig

    expert = ScriptedExpert(cell, ExpertConfig(close_until_held=True, close_lift_m=0.005))
    for seed in (31, 32, 33):
        result, trace = _pick_place_trace(cell, expert, seed)
        assert result.success, f"seed {seed}"
        closing = [action for phase, action, _ in trace if phase == "close"]
        assert closing, f"seed {seed}: no close step"
        for action in closing:
            assert action[6] == 0.0 and action[2] == pytest.approx(0.005)
            assert not np.any(action[[0, 1, 3, 4, 5]])
        assert not any(a[6] == 0.0 and not np.any(a[:6]) for _, a, _ in trace), f"seed {seed}"
    with pytest.raises(ValueError, match="close_lift_m"):
        ExpertConfig(close_lift_m=-0.001)
    with pytest.raises(ValueError, match="close_lift_m"):
        ExpertConfig(close_lift_m=0.05)


def test_approach_gain_shrinks_the_last_steps_of_the_cross_in_proportion_to_the_distance(cell):
    """With approach_gain 0.5 each sideways step at hover height covers at most half of what is left
    to the part, so the cross ends in several shorter steps instead of one jump of the remainder; far
    steps stay at the limit, and the expert still solves the task."""
    from vla_ros.sim.expert import ExpertConfig

    config = ExpertConfig(per_axis_moves=True, close_until_held=True, close_lift_m=0.005, approach_gain=0.5)
    expert = ScriptedExpert(cell, config)
    for seed in (51, 52, 53):
        instruction = cell.reset(seed, "pick_place")
        part_id = cell.task.part_id
        cross: list[tuple[np.ndarray, np.ndarray]] = []  # (xy left to the part, xy step)
        while not cell.success() and len(cross) < MAX_EPISODE_STEPS:
            ee = cell.ee_pose()[0]
            action = expert.predict_action(None, instruction)
            if expert.phase == "approach" and np.any(action.vector[:2]):
                cross.append((cell.part_position(part_id)[:2] - ee[:2], action.vector[:2].copy()))
            cell.apply_action(action.vector)
        assert cell.success(), f"seed {seed}: {instruction} failed"
        left = np.array([c[0] for c in cross])
        steps = np.array([c[1] for c in cross])
        assert np.all(np.abs(steps) <= np.minimum(0.5 * np.abs(left), config.max_step_m) + 1e-9)
        assert np.all(np.sign(steps[steps != 0]) == np.sign(left[steps != 0]))
        assert np.any(np.isclose(np.abs(steps), config.max_step_m)), f"seed {seed}: no full step"
        shorter = np.abs(steps[(steps != 0) & ~np.isclose(np.abs(steps), config.max_step_m)])
        assert len(shorter) >= 3, f"seed {seed}: cross ended in {len(shorter)} short steps"
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="approach_gain"):
            ExpertConfig(approach_gain=bad)
