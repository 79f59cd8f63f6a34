"""The policy's output and the interface every policy backend implements.

Kept free of torch and ROS so that the controller, simulator, recorder and evaluator can share it
with the model core and the scripted expert alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

ACTION_DIM = 7
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")


@dataclass
class Action:
    """One policy step: end-effector deltas for one control period plus the gripper opening.

    ``vector`` is ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``: metres and radians per control
    period in the policy's frame, gripper in [0, 1] with 1 = open (OpenVLA's data convention).
    ``token_ids`` are the model's action tokens, in ``vector``'s order.
    """

    vector: np.ndarray
    token_ids: tuple[int, ...] = ()
    inference_time_s: float = 0.0
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vector = np.asarray(self.vector, dtype=np.float64).reshape(-1)
        if self.vector.shape != (ACTION_DIM,):
            raise ValueError(f"an action has {ACTION_DIM} values, got shape {self.vector.shape}")

    @property
    def translation(self) -> np.ndarray:
        return self.vector[0:3]

    @property
    def rotation(self) -> np.ndarray:
        return self.vector[3:6]

    @property
    def gripper(self) -> float:
        return float(self.vector[6])

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.vector)))


class Policy(Protocol):
    """Anything that maps a camera image and an instruction to an :class:`Action`.

    ``image`` is an HxWx3 uint8 RGB array. Implemented by the OpenVLA runtime and by the
    simulator's scripted expert.
    """

    name: str

    def predict_action(self, image: np.ndarray, instruction: str) -> Action: ...


def camera_views(policy: Policy) -> int:
    """Camera views ``policy`` looks at per step: a multi-view checkpoint's ``num_images`` (the main
    camera, then the others as ``extra_images``), else 1."""
    return int(getattr(policy, "num_images", 1))


def checkpoint_views(model_dir: str | Path) -> int:
    """Camera views a checkpoint directory looks at (config.json ``num_images``), known before the
    model loads; 1 when it cannot be read (loading the checkpoint then reports what is wrong)."""
    from vla_ros.model.configuration_openvla import ConfigError, OpenVLAConfig

    try:
        return OpenVLAConfig.from_json_file(Path(model_dir) / "config.json").num_images
    except (OSError, ConfigError, TypeError):
        return 1


def predict(
    policy: Policy, image: np.ndarray, instruction: str, extra_images: Sequence[np.ndarray] = ()
) -> Action:
    """``policy.predict_action``, handing it ``extra_images`` only when there are some: one-view
    policies (the scripted expert, a replayed recording) take no such argument."""
    if extra_images:
        return policy.predict_action(image, instruction, extra_images=extra_images)
    return policy.predict_action(image, instruction)
