"""The numbers the controller's safety path enforces, checked once at start-up.

Every limit carries its unit in its name (as MoveIt Servo's parameters do) so that a YAML file and the
code that reads it cannot disagree about units. A configuration that cannot be honoured (a stop
that takes longer than the watchdog allows, an empty workspace box) is refused here, at start-up,
instead of surprising someone at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.errors import UserInputError

AxisLimit = float | Sequence[float]


class SafetyConfigError(UserInputError, ValueError):
    """A safety limit is missing, non-finite, non-positive or inconsistent with another one."""


def _axis_triple(name: str, value: AxisLimit) -> tuple[float, float, float]:
    """A positive per-axis limit from a scalar (same on x, y, z) or a 3-sequence."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SafetyConfigError(f"{name} must be a number or 3 numbers, got {value!r}") from exc
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise SafetyConfigError(f"{name} must be a number or 3 numbers (x, y, z), got {arr.size} values")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise SafetyConfigError(
            f"{name} must be finite and > 0 on every axis, got {arr.tolist()}: "
            "a zero limit would freeze that axis; use a small positive value if that is what you want"
        )
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _position_triple(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SafetyConfigError(f"{name} must be 3 numbers (x, y, z) in metres, got {value!r}") from exc
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise SafetyConfigError(f"{name} must be 3 finite numbers (x, y, z) in metres, got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _positive_seconds(name: str, value: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise SafetyConfigError(f"{name} must be a number of seconds, got {value!r}") from exc
    if not math.isfinite(seconds) or seconds <= 0.0:
        raise SafetyConfigError(f"{name} must be finite and > 0 seconds, got {value!r}")
    return seconds


@dataclass(frozen=True, kw_only=True)
class SafetyLimits:
    """Limits of the controller's safety path, all in the robot's base frame.

    Speed and acceleration limits are per axis (a box, not a ball): each of vx, vy, vz stays within
    its own limit, so the norm of the linear velocity can reach ``|max_linear_speed_m_s|`` (sqrt(3)
    times a scalar limit). When a command is too fast the whole linear vector is scaled by one
    factor, so its direction is kept; the angular vector is scaled separately in the same way.

    ``max_output_interval_s`` is the longest expected gap between two outputs (nominal output period
    plus jitter). It is the look-ahead of the workspace check (a velocity is refused if it would
    carry the end effector out of the box within that time) and caps the time step of the
    acceleration limit, so that a stalled output loop cannot be followed by a jump in velocity.

    ``command_timeout_s`` must leave time to stop: from full speed at the acceleration limit the
    arm needs ``stopping_time_s`` and the watchdog brakes so that the output is zero when the
    timeout expires.
    """

    workspace_min_m: Sequence[float]
    workspace_max_m: Sequence[float]
    max_linear_speed_m_s: AxisLimit = 0.25
    max_angular_speed_rad_s: AxisLimit = 1.0
    max_linear_accel_m_s2: AxisLimit = 2.5
    max_angular_accel_rad_s2: AxisLimit = 10.0
    command_timeout_s: float = 0.5
    max_command_age_s: float = 0.25
    ee_pose_timeout_s: float = 0.5
    max_output_interval_s: float = 0.05

    def __post_init__(self) -> None:
        # Normalise in place (frozen, hence object.__setattr__) so that every user of the limits
        # sees plain 3-tuples of floats whatever the YAML or caller provided.
        for name in (
            "max_linear_speed_m_s",
            "max_angular_speed_rad_s",
            "max_linear_accel_m_s2",
            "max_angular_accel_rad_s2",
        ):
            object.__setattr__(self, name, _axis_triple(name, getattr(self, name)))
        for name in ("workspace_min_m", "workspace_max_m"):
            object.__setattr__(self, name, _position_triple(name, getattr(self, name)))
        for name in ("command_timeout_s", "max_command_age_s", "ee_pose_timeout_s", "max_output_interval_s"):
            object.__setattr__(self, name, _positive_seconds(name, getattr(self, name)))

        lo, hi = np.asarray(self.workspace_min_m), np.asarray(self.workspace_max_m)
        if np.any(lo >= hi):
            bad = ", ".join(f"{axis}: {a} >= {b}" for axis, a, b in zip("xyz", lo, hi, strict=True) if a >= b)
            raise SafetyConfigError(
                f"workspace box is empty ({bad}): workspace_min_m must be below workspace_max_m on "
                "every axis (base frame, metres)"
            )
        if self.command_timeout_s < self.stopping_time_s:
            raise SafetyConfigError(
                f"command_timeout_s={self.command_timeout_s} is shorter than the "
                f"{self.stopping_time_s:.3f} s needed to stop from full speed at the acceleration "
                "limits: raise command_timeout_s or the acceleration limits, or lower the speed limits"
            )

    @property
    def max_speed(self) -> np.ndarray:
        """Per-axis speed limits of the 6-D twist ``[vx, vy, vz, wx, wy, wz]``."""
        return np.array(self.max_linear_speed_m_s + self.max_angular_speed_rad_s, dtype=np.float64)

    @property
    def max_accel(self) -> np.ndarray:
        """Per-axis acceleration limits of the 6-D twist."""
        return np.array(self.max_linear_accel_m_s2 + self.max_angular_accel_rad_s2, dtype=np.float64)

    @property
    def stopping_time_s(self) -> float:
        """Time to brake from full speed to zero on the slowest-braking axis."""
        return float(np.max(self.max_speed / self.max_accel))

    @property
    def workspace_min(self) -> np.ndarray:
        return np.array(self.workspace_min_m, dtype=np.float64)

    @property
    def workspace_max(self) -> np.ndarray:
        return np.array(self.workspace_max_m, dtype=np.float64)
