"""Synthetic demonstration bags with known content, for tests, benchmarks and trying the tools out.

One call writes a bag in which the same action sequence is recorded three consistent ways (ActionStep,
teleop twist = action / period, end-effector poses integrating the actions), so every action source of
:mod:`vla_ros.data.dataset` must recover the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.data.bag import BagWriter
from vla_ros.geometry import quaternion_from_rotation_vector, quaternion_multiply


@dataclass(frozen=True)
class SyntheticTopics:
    camera: str = "/camera/image_raw"
    instruction: str = "/vla/instruction"
    action_step: str = "/vla/action_step"
    twist: str = "/servo_node/delta_twist_cmds"
    ee_pose: str = "/ee_pose"
    gripper: str = "/vla/gripper_cmd"


def step_image(step: int, height: int = 8, width: int = 8, seed: int = 0) -> np.ndarray:
    """A deterministic frame that differs for every (seed, step)."""
    rng = np.random.default_rng([seed, step])
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_demo_bag(
    path: str | Path,
    actions: Sequence[Sequence[float]] | np.ndarray,
    *,
    storage: str = "mcap",
    instruction: str | Sequence[str] = "pick up the red gear",
    rate_hz: float = 5.0,
    start_ns: int = 1_000_000_000_000,
    image_size: tuple[int, int] = (8, 8),
    seed: int = 0,
    topics: SyntheticTopics = SyntheticTopics(),
    token_ids: Sequence[Sequence[int]] | None = None,
    write: Sequence[str] = ("camera", "instruction", "action_step", "twist", "ee_pose", "gripper"),
    step_times_ns: Sequence[int] | None = None,
) -> Path:
    """Write ``actions`` (T x 7) as a demonstration at ``rate_hz``; returns the bag path.

    ``instruction`` may be one string or one per step (a new Instruction is published on change).
    ``write`` selects which topics appear (to make bags with missing topics); ``step_times_ns``
    overrides the regular step times (to make gaps).
    """
    acts = np.asarray(actions, dtype=np.float64).reshape(-1, 7)
    n = len(acts)
    period_s = 1.0 / rate_hz
    times = (
        [int(t) for t in step_times_ns]
        if step_times_ns is not None
        else [start_ns + round(k * period_s * 1e9) for k in range(n)]
    )
    instructions = [instruction] * n if isinstance(instruction, str) else list(instruction)
    pos = np.array([0.4, 0.0, 0.3])
    quat = np.array([1.0, 0.0, 0.0, 0.0])  # gripper pointing down
    with BagWriter(path, storage=storage) as bag:
        last_instruction = None
        for k, (t, act) in enumerate(zip(times, acts, strict=True)):
            if "instruction" in write and instructions[k] != last_instruction:
                bag.write_instruction(topics.instruction, t - 1_000_000, instructions[k])
                last_instruction = instructions[k]
            if "camera" in write:
                bag.write_image(topics.camera, t, step_image(k, *image_size, seed=seed))
            if "ee_pose" in write:
                bag.write_pose(topics.ee_pose, t, pos, quat)
            if "twist" in write:
                bag.write_twist(topics.twist, t, act[0:3] / period_s, act[3:6] / period_s)
            if "gripper" in write:
                bag.write_gripper(topics.gripper, t, act[6])
            if "action_step" in write:
                bag.write_action_step(
                    topics.action_step,
                    t + 1_000_000,
                    act,
                    image_stamp_ns=t,
                    instruction=instructions[k],
                    token_ids=() if token_ids is None else token_ids[k],
                    model_id="synthetic-expert",
                    step=k,
                )
            pos = pos + act[0:3]
            quat = quaternion_multiply(quaternion_from_rotation_vector(act[3:6]), quat)
        if "ee_pose" in write and n:
            # The pose after the last action, so the last step's delta is recoverable.
            bag.write_pose(topics.ee_pose, times[-1] + round(period_s * 1e9), pos, quat)
    return Path(path)
