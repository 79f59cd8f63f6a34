"""The safety filter: every twist sent to the arm passes through :meth:`SafetyFilter.apply`.

What the filter guarantees, for any sequence of calls (any twist values including NaN, inf and
huge numbers, any times including jitter, repeats and jumps backwards, any end-effector positions):

1. Speed: every output component stays within its per-axis limit ``|out_i| <= max_speed_i``.
2. Workspace (hard): for each linear axis, given the last end-effector position ``p``, the output
   never carries the end effector across a face of the box within ``max_output_interval_s``
   (``p_i + out_i * max_output_interval_s <= workspace_max_i``, and the same below), and never
   pushes further out on an axis where ``p`` is already outside. Motion back inside is allowed.
3. Acceleration: between consecutive outputs ``|out_k,i - out_k-1,i| <= max_accel_i * dt_eff``
   with ``dt_eff = min(t_k - t_k-1, max_output_interval_s)``; ``dt_eff = 0`` (output unchanged)
   for the first call after construction or :meth:`SafetyFilter.reset` without a time, when time
   does not advance or runs backwards, and when the time is not finite. The filter starts from
   (and :meth:`reset` returns to) zero twist, so the first output is zero.

The hard limits (1, 2 and "zero at the stop deadline") win over the acceleration limit when they
cannot all hold; the output then carries :attr:`Flag.ACCEL_OVERRIDDEN` and goes straight to the
braking envelope of the face it is heading for (one jump, after which all limits hold again).
That happens only when the reported end-effector position is inconsistent with the commanded
motion (a jump, or an output gap longer than ``max_output_interval_s``): when the end effector
moves as commanded and outputs come at most ``max_output_interval_s`` apart, the filter brakes
early enough (a stopping-distance envelope near each face, see :func:`braking_speed_m_s`, and a
speed cap ``max_accel * time_left`` before a stop deadline) that all three hold together.

Commands that are not finite anywhere are treated as a stop request: the target becomes zero and
the output decelerates within the acceleration limit. An unknown end-effector position does the
same, because the workspace cannot be checked without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from vla_ros.control.limits import SafetyLimits

TWIST_DIM = 6
# Slack for floating-point rounding when intersecting per-axis intervals that touch exactly.
_INTERVAL_EPS = 1e-12
# Distances to a face beyond this are all "far" (keeps absurd positions from overflowing).
_FAR_M = 1e6


class Flag(str, Enum):
    """Why an output differs from the command, or what the safety path did to it."""

    NON_FINITE_REJECTED = "non_finite_rejected"
    SPEED_CLAMPED = "speed_clamped"
    ACCEL_LIMITED = "accel_limited"
    WORKSPACE_BLOCKED = "workspace_blocked"  # outward motion on an axis at or beyond a face
    WORKSPACE_LIMITED = "workspace_limited"  # braking towards a face
    ACCEL_OVERRIDDEN = "accel_overridden"  # a hard limit needed a larger change than allowed
    EE_POSE_UNKNOWN = "ee_pose_unknown"
    WATCHDOG_BRAKING = "watchdog_braking"  # slowing down to be stopped by the command deadline
    FIRST_OUTPUT = "first_output"
    TIME_NOT_ADVANCING = "time_not_advancing"
    TIME_INVALID = "time_invalid"
    # Set by the Controller around the filter.
    ESTOP_LATCHED = "estop_latched"
    COMMAND_TIMEOUT = "command_timeout"
    NO_COMMAND = "no_command"
    TIME_WENT_BACKWARDS = "time_went_backwards"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FilterResult:
    """One output of the safety path: the twist to send and what was done to get it.

    ``twist`` is ``[vx, vy, vz, wx, wy, wz]`` in m/s and rad/s in the base frame, always finite.
    """

    twist: np.ndarray
    time_s: float
    flags: tuple[Flag, ...] = field(default_factory=tuple)

    @property
    def is_zero(self) -> bool:
        return not np.any(self.twist)

    def with_flags(self, *extra: Flag) -> FilterResult:
        merged = tuple(dict.fromkeys((*extra, *self.flags)))
        return FilterResult(twist=self.twist, time_s=self.time_s, flags=merged)


def as_twist(twist: np.ndarray, name: str = "twist") -> np.ndarray:
    """A float64 copy of a 6-D twist; wrong shapes are a bug in the caller, so they raise."""
    arr = np.array(twist, dtype=np.float64).reshape(-1)
    if arr.shape != (TWIST_DIM,):
        raise ValueError(
            f"{name} must have 6 values [vx, vy, vz, wx, wy, wz], got shape {np.shape(twist)}: "
            "convert the Twist message with all of linear and angular"
        )
    return arr


def _uniform_scale(vector: np.ndarray, limit: np.ndarray) -> float:
    """Largest factor in [0, 1] that brings every ``|vector_i|`` within ``limit_i``."""
    mag = np.abs(vector)
    over = mag > limit
    if not np.any(over):
        return 1.0
    return float(np.min(limit[over] / mag[over]))


def braking_speed_m_s(distance_m: np.ndarray, accel_m_s2: np.ndarray, horizon_s: float) -> np.ndarray:
    """Fastest speed towards a face from which the arm can still stop before it.

    The speed ``v`` is held for up to ``horizon_s`` before the next output, then braking at
    ``accel`` needs ``v**2 / (2 accel)``: ``v * horizon + v**2 / (2 accel) <= distance``. Written in
    the rationalised form so that tiny distances do not lose precision. Zero at or beyond the face.
    """
    d = np.maximum(distance_m, 0.0)
    ah = accel_m_s2 * horizon_s
    return 2.0 * accel_m_s2 * d / (ah + np.sqrt(ah * ah + 2.0 * accel_m_s2 * d))


class SafetyFilter:
    """Speed, acceleration and workspace limits applied to a stream of twists at the output rate.

    Stateful: it remembers its last output and time, against which the acceleration limit holds.
    One instance per arm; call :meth:`apply` once per output.
    """

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self._max_speed = limits.max_speed
        self._max_accel = limits.max_accel
        self._ws_min = limits.workspace_min
        self._ws_max = limits.workspace_max
        self._horizon_s = limits.max_output_interval_s
        self._last_output = np.zeros(TWIST_DIM)
        self._last_time_s: float | None = None

    @property
    def last_output(self) -> np.ndarray:
        return self._last_output.copy()

    @property
    def last_time_s(self) -> float | None:
        return self._last_time_s

    def reset(self, now_s: float | None = None) -> None:
        """Forget the motion: the last output becomes zero (the arm was stopped outside the filter).

        With ``now_s`` the next call ramps up from zero with a normal time step; without, the next
        call is treated as the first (zero output).
        """
        self._last_output = np.zeros(TWIST_DIM)
        self._last_time_s = float(now_s) if now_s is not None and math.isfinite(now_s) else None

    def apply(
        self,
        twist: np.ndarray,
        now_s: float,
        ee_position_m: np.ndarray | None = None,
        stop_by_s: float | None = None,
    ) -> FilterResult:
        """Filter one commanded twist into the twist to send now.

        ``ee_position_m`` is the end effector's last known position in the base frame (None when
        unknown: the arm is then brought to a stop). ``stop_by_s`` is a deadline at which the output
        must be zero (the watchdog's command deadline); before it the speed is capped to what can
        still be braked to zero in time, at and after it the output is zero.
        """
        target = as_twist(twist)
        flags: list[Flag] = []
        prev = self._last_output

        dt_eff = self._advance_time(now_s, flags)

        # 1. The target: what the command asks for, if it may be followed at all.
        if not np.all(np.isfinite(target)):
            target = np.zeros(TWIST_DIM)
            flags.append(Flag.NON_FINITE_REJECTED)
        ee = None
        if ee_position_m is not None:
            ee = np.asarray(ee_position_m, dtype=np.float64).reshape(-1)
            if ee.shape != (3,) or not np.all(np.isfinite(ee)):
                ee = None
        if ee is None:
            target = np.zeros(TWIST_DIM)
            flags.append(Flag.EE_POSE_UNKNOWN)

        # 2. Speed: scale linear and angular parts uniformly so the direction is kept.
        for part in (slice(0, 3), slice(3, 6)):
            scale = _uniform_scale(target[part], self._max_speed[part])
            if scale < 1.0:
                target[part] *= scale
                if Flag.SPEED_CLAMPED not in flags:
                    flags.append(Flag.SPEED_CLAMPED)

        # Per-axis intervals the output must lie in: hard ones always, soft ones where reachable.
        hard_lo, hard_hi = -self._max_speed.copy(), self._max_speed.copy()
        soft_lo, soft_hi = np.full(TWIST_DIM, -np.inf), np.full(TWIST_DIM, np.inf)

        # 3. Workspace: no outward motion at or beyond a face, braking envelope inside.
        if ee is not None:
            d_up = np.clip(self._ws_max - ee, -_FAR_M, _FAR_M)
            d_down = np.clip(ee - self._ws_min, -_FAR_M, _FAR_M)
            acc = self._max_accel[0:3]
            hard_hi[0:3] = np.minimum(hard_hi[0:3], np.maximum(d_up, 0.0) / self._horizon_s)
            hard_lo[0:3] = np.maximum(hard_lo[0:3], -np.maximum(d_down, 0.0) / self._horizon_s)
            soft_hi[0:3] = braking_speed_m_s(d_up, acc, self._horizon_s)
            soft_lo[0:3] = -braking_speed_m_s(d_down, acc, self._horizon_s)
            lin = target[0:3]
            blocked = ((d_up <= 0.0) & (lin > 0.0)) | ((d_down <= 0.0) & (lin < 0.0))
            limited = ~blocked & ((lin > soft_hi[0:3]) | (lin < soft_lo[0:3]))
            target[0:3] = np.clip(lin, soft_lo[0:3], soft_hi[0:3])
            if np.any(blocked):
                flags.append(Flag.WORKSPACE_BLOCKED)
            if np.any(limited):
                flags.append(Flag.WORKSPACE_LIMITED)

        # 4. Stop deadline: be able to brake to zero by then; zero from then on.
        if stop_by_s is not None:
            remaining_s = stop_by_s - now_s if math.isfinite(stop_by_s) and math.isfinite(now_s) else 0.0
            if remaining_s <= 0.0:
                hard_lo[:] = 0.0
                hard_hi[:] = 0.0
                target[:] = 0.0
            else:
                cap = self._max_accel * remaining_s
                soft_lo = np.maximum(soft_lo, -cap)
                soft_hi = np.minimum(soft_hi, cap)
                for part in (slice(0, 3), slice(3, 6)):
                    scale = _uniform_scale(target[part], cap[part])
                    if scale < 1.0:
                        target[part] *= scale
                        if Flag.WATCHDOG_BRAKING not in flags:
                            flags.append(Flag.WATCHDOG_BRAKING)

        # 5. Acceleration: move from the last output towards the target along a straight line.
        step_limit = self._max_accel * dt_eff
        change = target - prev
        candidate = prev.copy()
        for part in (slice(0, 3), slice(3, 6)):
            scale = _uniform_scale(change[part], step_limit[part])
            candidate[part] = prev[part] + scale * change[part]
            if scale < 1.0 and Flag.ACCEL_LIMITED not in flags:
                flags.append(Flag.ACCEL_LIMITED)

        # 6. Final per-axis projection: hard limits, then acceleration, then soft limits.
        lo, hi = hard_lo, hard_hi
        acc_lo, acc_hi = prev - step_limit, prev + step_limit
        lo, hi, ok = _intersect(lo, hi, acc_lo, acc_hi)
        if not np.all(ok):
            flags.append(Flag.ACCEL_OVERRIDDEN)
        lo, hi, _ = _intersect(lo, hi, soft_lo, soft_hi)
        output = np.clip(candidate, lo, hi)
        output[output == 0.0] = 0.0  # no negative zeros in messages

        self._last_output = output
        return FilterResult(twist=output.copy(), time_s=float(now_s), flags=tuple(flags))

    def _advance_time(self, now_s: float, flags: list[Flag]) -> float:
        """The time step the acceleration limit may use for this output, updating the clock."""
        try:
            now_s = float(now_s)
        except (TypeError, ValueError):
            now_s = math.nan
        if not math.isfinite(now_s):
            flags.append(Flag.TIME_INVALID)
            return 0.0
        last = self._last_time_s
        self._last_time_s = now_s if last is None or now_s != last else last
        if last is None:
            flags.append(Flag.FIRST_OUTPUT)
            return 0.0
        if now_s <= last:
            # Repeated or backwards time: hold the last output and restart the clock from here,
            # so that a clock reset does not freeze the output for as long as it jumped.
            flags.append(Flag.TIME_NOT_ADVANCING)
            return 0.0
        return min(now_s - last, self._horizon_s)


def _intersect(
    lo: np.ndarray, hi: np.ndarray, other_lo: np.ndarray, other_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis intersection of [lo, hi] with [other_lo, other_hi], keeping [lo, hi] where empty."""
    new_lo = np.maximum(lo, other_lo)
    new_hi = np.minimum(hi, other_hi)
    ok = new_lo <= new_hi + _INTERVAL_EPS
    # Intervals that touch within rounding: collapse to one point that is inside [lo, hi].
    touching = ok & (new_lo > new_hi)
    point = np.clip(new_hi, lo, hi)
    new_lo = np.where(touching, point, new_lo)
    new_hi = np.where(touching, point, new_hi)
    return np.where(ok, new_lo, lo), np.where(ok, new_hi, hi), ok
