"""Specification of the safety filter: what it guarantees for any input, and how it behaves at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.control import Flag, SafetyFilter, SafetyLimits

LIMITS = SafetyLimits(
    workspace_min_m=(-0.4, -0.5, 0.05),
    workspace_max_m=(0.6, 0.5, 0.8),
    max_linear_speed_m_s=(0.25, 0.2, 0.15),
    max_angular_speed_rad_s=1.0,
    max_linear_accel_m_s2=(2.5, 2.0, 3.0),
    max_angular_accel_rad_s2=10.0,
    command_timeout_s=0.5,
    max_output_interval_s=0.05,
)
VMAX = LIMITS.max_speed
AMAX = LIMITS.max_accel
H = LIMITS.max_output_interval_s
LO, HI = LIMITS.workspace_min, LIMITS.workspace_max
TOL = 1e-9

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
wild_component = st.one_of(
    any_float,
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0]),
    st.floats(-2.0, 2.0),
)
wild_twist = st.lists(wild_component, min_size=6, max_size=6).map(np.array)
any_position = st.one_of(
    st.none(),
    st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3).map(np.array),
    st.lists(any_float, min_size=3, max_size=3).map(np.array),
)
# Time steps: jitter, repeats, jumps backwards and forwards, and the odd non-finite clock.
# Commands held for a while, as a policy does, so that the arm actually gets somewhere.
held_commands = st.lists(
    st.tuples(
        st.one_of(wild_twist, st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6).map(np.array)),
        st.floats(1e-4, H),
        st.integers(1, 30),
    ),
    min_size=1,
    max_size=8,
).map(lambda segments: [(twist, dt) for twist, dt, n in segments for _ in range(n)])
time_step = st.one_of(
    st.floats(1e-6, H),
    st.floats(-1.0, 1.0),
    st.sampled_from([0.0, 0.01, 0.02, 5.0, -5.0, math.nan]),
)


class TimeStepReference:
    """An independent statement of the documented time step of the acceleration limit."""

    def __init__(self) -> None:
        self.last: float | None = None

    def advance(self, now: float) -> float:
        if not math.isfinite(now):
            return 0.0
        last, self.last = self.last, now
        if last is None or now <= last:
            return 0.0
        return min(now - last, H)


def hard_bounds(ee: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The documented hard limits of the linear velocity at a given end-effector position."""
    lo, hi = -VMAX[0:3].copy(), VMAX[0:3].copy()
    if ee is not None and ee.shape == (3,) and np.all(np.isfinite(ee)):
        with np.errstate(over="ignore"):  # absurd positions: the bound is then simply the speed limit
            hi = np.minimum(hi, np.maximum(HI - ee, 0.0) / H)
            lo = np.maximum(lo, -np.maximum(ee - LO, 0.0) / H)
    return lo, hi


def assert_speed_and_workspace(out: np.ndarray, ee: np.ndarray | None) -> None:
    assert np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= VMAX * (1 + 1e-12)), out
    lo, hi = hard_bounds(ee)
    assert np.all(out[0:3] <= hi + TOL), (out, ee)
    assert np.all(out[0:3] >= lo - TOL), (out, ee)
    if ee is not None and np.all(np.isfinite(ee)):
        # Never further out on an axis that is already at or beyond a face.
        assert not np.any((ee >= HI) & (out[0:3] > 0.0))
        assert not np.any((ee <= LO) & (out[0:3] < 0.0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(wild_twist, time_step, any_position), min_size=1, max_size=40))
def test_no_output_exceeds_speed_or_workspace_limits_for_any_input(steps):
    f = SafetyFilter(LIMITS)
    clock = TimeStepReference()
    now, prev = 100.0, np.zeros(6)
    for twist, dt, ee in steps:
        now = now + dt if math.isfinite(dt) else math.nan
        result = f.apply(twist, now, ee)
        out = result.twist
        assert_speed_and_workspace(out, ee)
        dt_eff = clock.advance(now)
        over = np.abs(out - prev) > AMAX * dt_eff + TOL
        if np.any(over):
            # Only the workspace may force a larger change, and then it says so and goes straight
            # to the braking envelope of the face it is heading for.
            assert Flag.ACCEL_OVERRIDDEN in result.flags
            assert not np.any(over[3:6])
            assert np.all(np.isfinite(ee))
            distance = np.where(prev[0:3] > 0, HI - ee, ee - LO)
            speed = np.abs(out[0:3])
            on_envelope = np.isclose(
                speed * H + speed**2 / (2 * AMAX[0:3]), np.maximum(distance, 0.0), atol=TOL
            )
            assert np.all(on_envelope[over[0:3]]), (out, prev, ee)
        if not math.isfinite(now):
            now = 100.0  # keep generating times from a finite base
        prev = out


@settings(max_examples=200, deadline=None)
@given(
    start=st.tuples(*(st.floats(float(a), float(b)) for a, b in zip(LO, HI, strict=True))).map(np.array),
    steps=held_commands,
)
def test_arm_moving_as_commanded_stays_inside_workspace_with_all_limits_holding(start, steps):
    # The end effector follows the output exactly and outputs come at most max_output_interval_s
    # apart: then speed, acceleration and workspace hold together, with no override needed.
    f = SafetyFilter(LIMITS)
    ee, now, prev, dt_prev = start.copy(), 0.0, np.zeros(6), 0.0
    for twist, dt in steps:
        result = f.apply(twist, now, ee)
        out = result.twist
        assert Flag.ACCEL_OVERRIDDEN not in result.flags
        assert_speed_and_workspace(out, ee)
        assert np.all(np.abs(out - prev) <= AMAX * dt_prev + TOL)
        ee = ee + out[0:3] * dt
        assert np.all(ee <= HI + TOL) and np.all(ee >= LO - TOL), ee
        prev, dt_prev, now = out, dt, now + dt


@settings(max_examples=200, deadline=None)
@given(
    steps=held_commands,
    stop_after_s=st.floats(0.0, 1.0),
)
def test_output_is_zero_from_the_stop_deadline_on_without_exceeding_acceleration(steps, stop_after_s):
    f = SafetyFilter(LIMITS)
    ee = (LO + HI) / 2
    now, prev, dt_prev = 0.0, np.zeros(6), 0.0
    for twist, dt in steps:
        result = f.apply(twist, now, ee, stop_by_s=stop_after_s)
        out = result.twist
        assert Flag.ACCEL_OVERRIDDEN not in result.flags
        assert np.all(np.abs(out - prev) <= AMAX * dt_prev + TOL)
        if now >= stop_after_s:
            assert result.is_zero
        ee = ee + out[0:3] * dt
        prev, dt_prev, now = out, dt, now + dt


def ramp(f: SafetyFilter, twist, n: int, dt: float = 0.01, t0: float = 0.0, ee=None):
    ee = (LO + HI) / 2 if ee is None else ee
    results = [f.apply(np.asarray(twist, dtype=float), t0 + i * dt, ee) for i in range(n)]
    return results, t0 + (n - 1) * dt


def test_first_output_is_zero_and_motion_ramps_up_within_acceleration_limit():
    f = SafetyFilter(LIMITS)
    results, _ = ramp(f, [0.1, 0, 0, 0, 0, 0], 5)
    assert results[0].is_zero and Flag.FIRST_OUTPUT in results[0].flags
    assert results[1].twist[0] == pytest.approx(AMAX[0] * 0.01)
    assert Flag.ACCEL_LIMITED in results[1].flags
    assert results[4].twist[0] == pytest.approx(0.1)


def test_non_finite_command_is_a_stop_request_that_decelerates_within_acceleration_limit():
    f = SafetyFilter(LIMITS)
    _, t = ramp(f, [0.2, 0, 0, 0, 0, 0], 20)
    speed = f.last_output[0]
    assert speed == pytest.approx(0.2)
    out = f.apply(np.array([math.nan, 0, 0, 0, 0, 0]), t + 0.01, (LO + HI) / 2)
    assert Flag.NON_FINITE_REJECTED in out.flags
    assert out.twist[0] == pytest.approx(speed - AMAX[0] * 0.01)
    results, _ = ramp(f, [0, math.inf, 0, 0, 0, 0], 20, t0=t + 0.02)
    assert results[-1].is_zero


def test_speed_clamp_keeps_the_direction_of_the_linear_velocity():
    f = SafetyFilter(LIMITS)
    command = np.array([3.0, -1.5, 0.75, 0, 0, 0])
    results, _ = ramp(f, command, 60)
    out = results[-1].twist[0:3]
    assert Flag.SPEED_CLAMPED in results[-1].flags
    # x is the binding axis (3.0 / 0.25 is the largest ratio), the others follow proportionally.
    assert out[0] == pytest.approx(VMAX[0])
    assert np.allclose(out / np.linalg.norm(out), command[0:3] / np.linalg.norm(command[0:3]))


def test_outward_motion_at_a_face_is_blocked_and_motion_back_inside_allowed():
    f = SafetyFilter(LIMITS)
    at_face = np.array([HI[0], 0.0, 0.4])
    results, t = ramp(f, [0.2, 0.1, 0, 0, 0, 0], 30, ee=at_face)
    assert results[-1].twist[0] == 0.0
    assert results[-1].twist[1] == pytest.approx(0.1)
    assert Flag.WORKSPACE_BLOCKED in results[-1].flags
    results, _ = ramp(f, [-0.2, 0, 0, 0, 0, 0], 30, t0=t + 0.01, ee=at_face)
    assert results[-1].twist[0] == pytest.approx(-0.2)


def test_arm_brakes_before_the_workspace_face_and_stops_inside():
    f = SafetyFilter(LIMITS)
    ee, now, dt = np.array([0.0, 0.0, 0.4]), 0.0, 0.02
    for _ in range(400):
        out = f.apply(np.array([0.25, 0, 0, 0, 0, 0]), now, ee).twist
        ee = ee + out[0:3] * dt
        now += dt
    assert ee[0] <= HI[0]
    assert ee[0] > HI[0] - 0.01  # it does get close: the envelope is not needlessly timid


def test_unknown_end_effector_position_brings_the_arm_to_a_stop():
    f = SafetyFilter(LIMITS)
    _, t = ramp(f, [0.2, 0, 0, 0.5, 0, 0], 20)
    out = f.apply(np.array([0.2, 0, 0, 0.5, 0, 0]), t + 0.01, None)
    assert Flag.EE_POSE_UNKNOWN in out.flags
    assert 0.0 < out.twist[0] < 0.2  # decelerating, not jumping
    for i in range(2, 30):
        out = f.apply(np.array([0.2, 0, 0, 0.5, 0, 0]), t + i * 0.01, np.array([np.nan, 0, 0]))
    assert out.is_zero


def test_time_that_does_not_advance_holds_the_output_and_a_backwards_jump_restarts_the_clock():
    f = SafetyFilter(LIMITS)
    _, t = ramp(f, [0.1, 0, 0, 0, 0, 0], 3)
    held = f.last_output
    same = f.apply(np.zeros(6), t, (LO + HI) / 2)
    assert np.array_equal(same.twist, held) and Flag.TIME_NOT_ADVANCING in same.flags
    back = f.apply(np.zeros(6), t - 1000.0, (LO + HI) / 2)
    assert np.array_equal(back.twist, held)
    after = f.apply(np.zeros(6), t - 1000.0 + 0.01, (LO + HI) / 2)
    assert after.twist[0] == pytest.approx(held[0] - AMAX[0] * 0.01)


def test_a_stalled_output_loop_does_not_allow_a_jump_in_velocity():
    f = SafetyFilter(LIMITS)
    f.apply(np.zeros(6), 0.0, (LO + HI) / 2)
    out = f.apply(np.array([0.25, 0, 0, 0, 0, 0]), 10.0, (LO + HI) / 2)
    assert out.twist[0] == pytest.approx(AMAX[0] * H)


def test_wrong_twist_shape_is_a_caller_bug():
    with pytest.raises(ValueError, match="6 values"):
        SafetyFilter(LIMITS).apply(np.zeros(7), 0.0, None)
