"""Running one episode in the workcell without ROS: reset, then image -> policy -> action until done.

The ROS closed loop (sim_node + policy/controller nodes) does the same through topics; this direct
loop is what the benchmark, the tests and offline data collection use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_ros.action import Action, Policy, camera_views, predict
from vla_ros.sim.tasks import MAX_EPISODE_STEPS
from vla_ros.sim.workcell import Workcell

StepCallback = Callable[[int, np.ndarray, Action, Workcell], None]


@dataclass
class EpisodeResult:
    seed: int
    task: str
    instruction: str
    success: bool
    steps: int
    sim_time_s: float
    wall_time_s: float


def run_episode(
    workcell: Workcell,
    policy: Policy,
    seed: int,
    task: str | None = None,
    max_steps: int = MAX_EPISODE_STEPS,
    render: bool = True,
    on_step: StepCallback | None = None,
    start_ee_m: np.ndarray | None = None,
    instruction: str | None = None,
) -> EpisodeResult:
    """Reset to ``seed``/``task`` and step ``policy`` until the task succeeds or ``max_steps`` pass.

    ``start_ee_m`` starts the arm there instead of home (gripper down), e.g. for demonstrations in
    which the arm's position does not give away the way to the target.

    ``instruction`` replaces the task's own canonical words as the policy's prompt (the study gives
    the policy an operator's raw words or what the resolver forwarded); success is still the task's.

    ``render=False`` hands the policy an empty image (for privileged policies such as the expert when
    no frames are needed); ``on_step(step, image, action, workcell)`` sees each step before it is
    applied (for recording).

    A policy with ``num_images == 2`` (a two-view checkpoint) also gets the wrist camera's frame;
    the workcell must have it (``WorkcellConfig.wrist_camera``).
    """
    views = camera_views(policy)
    if views > 2 or (views == 2 and "wrist" not in workcell.camera_names):
        raise ValueError(
            f"the policy looks at {views} camera views; this workcell has {list(workcell.camera_names)} "
            "(a two-view policy needs WorkcellConfig(wrist_camera=True))"
        )
    wall_start = time.perf_counter()
    canonical = workcell.reset(seed, task)
    instruction = canonical if instruction is None else instruction
    if start_ee_m is not None:
        workcell.place_ee(start_ee_m)
    sim_start = workcell.sim_time_s
    blank = np.zeros((workcell.config.image_height, workcell.config.image_width, 3), dtype=np.uint8)
    success = workcell.success()
    steps = 0
    while not success and steps < max_steps:
        image = workcell.render() if render else blank
        action = predict(policy, image, instruction, (workcell.render("wrist"),) if views == 2 else ())
        if on_step is not None:
            on_step(steps, image, action, workcell)
        workcell.apply_action(action.vector)
        steps += 1
        success = workcell.success()
    return EpisodeResult(
        seed=seed,
        task=workcell.task.name,
        instruction=instruction,
        success=success,
        steps=steps,
        sim_time_s=workcell.sim_time_s - sim_start,
        wall_time_s=time.perf_counter() - wall_start,
    )
