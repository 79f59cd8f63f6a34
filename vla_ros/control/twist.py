"""From the policy's 7-D action to arm commands: a twist, a gripper command, or a pose target.

OpenVLA predicts, per control period, end-effector *deltas* ``[dx, dy, dz, droll, dpitch, dyaw]`` and
a gripper opening (1 = open in its training data). Sending those deltas as if they were velocities is
the classic mistake: the twist is the delta divided by the control period. Rotation deltas are divided
the same way, which treats small roll/pitch/yaw increments as a rotation vector (exact to first order,
and the per-step rotations of these policies are a few degrees at most).

Non-finite actions are passed through unchanged on purpose: the safety filter is the one place that
rejects them, so there is a single behaviour to test and document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.action import ACTION_DIM, Action
from vla_ros.control.limits import SafetyLimits
from vla_ros.control.safety_filter import TWIST_DIM, as_twist
from vla_ros.geometry import quaternion_angle_rad, quaternion_from_rotation_vector, quaternion_multiply

IDENTITY_AXIS_MAP = (0, 1, 2, 3, 4, 5)


def action_to_twist(
    action: Action | np.ndarray | Sequence[float],
    control_period_s: float,
    axis_scale: Sequence[float] = (1.0,) * TWIST_DIM,
    axis_sign: Sequence[int] = (1,) * TWIST_DIM,
    axis_map: Sequence[int] = IDENTITY_AXIS_MAP,
) -> np.ndarray:
    """The twist ``[vx, vy, vz, wx, wy, wz]`` (m/s, rad/s) that performs one action's deltas in one period.

    Output axis ``i`` is ``axis_sign[i] * axis_scale[i] * delta[axis_map[i]] / control_period_s``:
    ``axis_map`` says which policy axis feeds each robot axis (a permutation of 0..5, e.g.
    ``(1, 0, 2, 4, 3, 5)`` swaps x and y), ``axis_sign`` flips axes whose direction differs between
    the policy's training frame and the robot's, ``axis_scale`` (>= 0) slows or speeds an axis.
    """
    vector = action.vector if isinstance(action, Action) else np.asarray(action, dtype=np.float64).reshape(-1)
    if vector.shape != (ACTION_DIM,):
        raise ValueError(
            f"an action has {ACTION_DIM} values [dx, dy, dz, droll, dpitch, dyaw, gripper], "
            f"got shape {vector.shape}"
        )
    period = float(control_period_s)
    if not math.isfinite(period) or period <= 0.0:
        raise ValueError(f"control_period_s must be finite and > 0 seconds, got {control_period_s!r}")
    scale, sign, mapping = _check_axis_options(axis_scale, axis_sign, axis_map)
    deltas = vector[:TWIST_DIM]
    return sign * scale * deltas[list(mapping)] / period


def _check_axis_options(
    axis_scale: Sequence[float], axis_sign: Sequence[int], axis_map: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    scale = np.asarray(axis_scale, dtype=np.float64).reshape(-1)
    if scale.shape != (TWIST_DIM,) or not np.all(np.isfinite(scale)) or np.any(scale < 0.0):
        raise ValueError(
            f"axis_scale must be 6 finite numbers >= 0 (use axis_sign to flip), got {axis_scale!r}"
        )
    sign = np.asarray(axis_sign, dtype=np.float64).reshape(-1)
    if sign.shape != (TWIST_DIM,) or not np.all(np.isin(sign, (-1.0, 1.0))):
        raise ValueError(f"axis_sign must be 6 values, each 1 or -1, got {axis_sign!r}")
    mapping = tuple(int(i) for i in axis_map)
    if sorted(mapping) != list(range(TWIST_DIM)) or any(float(i) != int(i) for i in axis_map):
        raise ValueError(
            "axis_map must be a permutation of 0..5 (robot axis i takes policy axis axis_map[i]), "
            f"got {axis_map!r}"
        )
    return scale, sign, mapping


def gripper_command(value: float, threshold: float = 0.5, invert: bool = False) -> tuple[float, bool]:
    """The gripper opening in [0, 1] (1 = open) and whether to close, from the policy's gripper value.

    OpenVLA's data uses 1 = open; ``invert=True`` is for policies trained with 1 = closed. The
    opening is clipped to [0, 1]; ``close`` is True when the opening is below ``threshold``
    (an opening exactly at the threshold stays open).
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"gripper value is {value}: the policy produced a non-finite action; drop this command"
        )
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (an opening), got {threshold}")
    opening = min(max(1.0 - value if invert else value, 0.0), 1.0)
    return opening, opening < threshold


# ---------------------------------------------------------------------- pose target mode


@dataclass(frozen=True)
class PoseTarget:
    """A target pose in the base frame: position in metres, orientation quaternion ``[x, y, z, w]``."""

    position_m: np.ndarray
    orientation_xyzw: np.ndarray


def _slerp(q1: np.ndarray, q2: np.ndarray, fraction: float) -> np.ndarray:
    if np.dot(q1, q2) < 0.0:
        q2 = -q2
    dot = min(float(np.dot(q1, q2)), 1.0)
    theta = math.acos(dot)
    if theta < 1e-9:
        out = q1 + fraction * (q2 - q1)
    else:
        out = (math.sin((1.0 - fraction) * theta) * q1 + math.sin(fraction * theta) * q2) / math.sin(theta)
    return out / np.linalg.norm(out)


def _unit_quaternion(q: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(q, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(arr)) if arr.shape == (4,) and np.all(np.isfinite(arr)) else 0.0
    if norm < 1e-6:
        raise ValueError(f"{name} must be a finite non-zero quaternion [x, y, z, w], got {q!r}")
    return arr / norm


class PoseIntegrator:
    """Turns filtered twists into a PoseStamped target for arms driven by pose, not velocity.

    The target starts at the end effector's current pose and moves by ``twist * dt`` each output
    (linear velocity in the base frame, angular velocity in the base frame applied on the left).
    It is kept on a leash: at most ``max_lead_m`` and ``max_lead_rad`` ahead of the current pose,
    so an arm that cannot follow is not handed a target far away. A zero or non-finite twist
    re-anchors the target at the current pose: stop means hold where the arm is, not finish the
    remaining lead. The position stays inside the workspace box; on an axis where the arm is
    already outside, the target may be as far out as the arm but no further (back inside is fine).
    """

    def __init__(
        self,
        workspace_min_m: Sequence[float],
        workspace_max_m: Sequence[float],
        max_lead_m: float = 0.05,
        max_lead_rad: float = 0.25,
    ) -> None:
        self._ws_min = np.asarray(workspace_min_m, dtype=np.float64).reshape(3)
        self._ws_max = np.asarray(workspace_max_m, dtype=np.float64).reshape(3)
        if np.any(self._ws_min >= self._ws_max):
            raise ValueError("workspace_min_m must be below workspace_max_m on every axis")
        if not (max_lead_m > 0.0 and max_lead_rad > 0.0):
            raise ValueError("max_lead_m and max_lead_rad must be > 0")
        self.max_lead_m = float(max_lead_m)
        self.max_lead_rad = float(max_lead_rad)
        self._target: PoseTarget | None = None

    @classmethod
    def from_limits(
        cls, limits: SafetyLimits, max_lead_m: float = 0.05, max_lead_rad: float = 0.25
    ) -> PoseIntegrator:
        return cls(limits.workspace_min_m, limits.workspace_max_m, max_lead_m, max_lead_rad)

    @property
    def target(self) -> PoseTarget | None:
        return self._target

    def reset(self) -> None:
        """Forget the target; the next step starts again from the current pose."""
        self._target = None

    def step(
        self,
        twist: np.ndarray,
        dt_s: float,
        ee_position_m: np.ndarray | Sequence[float],
        ee_orientation_xyzw: np.ndarray | Sequence[float],
    ) -> PoseTarget:
        """Advance the target by ``twist`` over ``dt_s`` seconds, given the current end-effector pose."""
        twist = as_twist(twist)
        ee_pos = np.asarray(ee_position_m, dtype=np.float64).reshape(-1)
        if ee_pos.shape != (3,) or not np.all(np.isfinite(ee_pos)):
            raise ValueError(
                "ee_position_m must be 3 finite numbers: without the current pose publish no target"
            )
        ee_q = _unit_quaternion(ee_orientation_xyzw, "ee_orientation_xyzw")

        moving = np.all(np.isfinite(twist)) and np.any(twist) and math.isfinite(dt_s)
        if self._target is None or not moving:
            position, orientation = ee_pos.copy(), ee_q.copy()
        else:
            dt = max(float(dt_s), 0.0)
            position = self._target.position_m + twist[0:3] * dt
            orientation = quaternion_multiply(
                quaternion_from_rotation_vector(twist[3:6] * dt), self._target.orientation_xyzw
            )
            orientation /= np.linalg.norm(orientation)
            lead = position - ee_pos
            lead_m = float(np.linalg.norm(lead))
            if lead_m > self.max_lead_m:
                position = ee_pos + lead * (self.max_lead_m / lead_m)
            lead_rad = quaternion_angle_rad(ee_q, orientation)
            if lead_rad > self.max_lead_rad:
                orientation = _slerp(ee_q, orientation, self.max_lead_rad / lead_rad)
        upper = np.maximum(self._ws_max, ee_pos)
        lower = np.minimum(self._ws_min, ee_pos)
        position = np.clip(position, lower, upper)
        if orientation[3] < 0.0:
            orientation = -orientation  # one sign convention, so consecutive targets compare equal
        self._target = PoseTarget(position_m=position, orientation_xyzw=orientation)
        return PoseTarget(position_m=position.copy(), orientation_xyzw=orientation.copy())
