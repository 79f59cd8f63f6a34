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


def test_expert_steps_never_exceed_the_step_limit(cell):
    """The expert scales each 3-D step so its length is at most the step limit."""
    from vla_ros.sim.expert import ExpertConfig

    limit = ExpertConfig().max_step_m
    expert = ScriptedExpert(cell)
    for seed in (21, 22, 23):
        result, trace = _pick_place_trace(cell, expert, seed)
        assert result.success, f"seed {seed}"
        moves = np.array([v[:3] for _, v, _ in trace])
        assert np.all(np.abs(moves) <= limit + 1e-9)
        assert np.all(np.linalg.norm(moves, axis=1) <= limit + 1e-9)
