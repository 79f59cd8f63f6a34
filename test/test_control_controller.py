"""Specification of the controller core: watchdog, e-stop, stale commands, and the limits end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.control import CommandVerdict, Controller, EStop, Flag, SafetyLimits, Watchdog

LIMITS = SafetyLimits(
    workspace_min_m=(-0.5, -0.5, 0.0),
    workspace_max_m=(0.5, 0.5, 0.8),
    max_linear_speed_m_s=0.25,
    max_angular_speed_rad_s=1.0,
    max_linear_accel_m_s2=2.5,
    max_angular_accel_rad_s2=10.0,
    command_timeout_s=0.3,
    max_command_age_s=0.2,
    ee_pose_timeout_s=0.5,
    max_output_interval_s=0.05,
)
VMAX, AMAX = LIMITS.max_speed, LIMITS.max_accel
CENTRE = np.array([0.0, 0.0, 0.4])
OUTPUT_PERIOD_S = 0.01
FULL_SPEED = np.array([0.25, 0.0, 0.0, 0.0, 0.0, 1.0])


def run(controller: Controller, start_s: float, end_s: float, command=None, command_period_s=0.2, ee=CENTRE):
    """Step the controller at the output rate; a policy sends ``command`` every command period."""
    outputs = []
    n = round((end_s - start_s) / OUTPUT_PERIOD_S)
    next_command_s = start_s
    for i in range(n):
        now = start_s + i * OUTPUT_PERIOD_S
        controller.on_ee_pose(ee, now)
        if command is not None and now >= next_command_s - 1e-12:
            controller.on_command(command, stamp_s=now, now_s=now)
            next_command_s += command_period_s
        outputs.append((now, controller.step(now)))
    return outputs


def test_controller_follows_fresh_commands_at_full_speed():
    controller = Controller(LIMITS)
    outputs = run(controller, 0.0, 2.0, FULL_SPEED, command_period_s=0.2)
    # The policy's period leaves enough margin before the timeout: no braking while it keeps up.
    assert np.allclose(outputs[-1][1].twist, FULL_SPEED)
    assert all(Flag.WATCHDOG_BRAKING not in r.flags for _, r in outputs[20:])


def test_controller_stops_when_commands_stop_arriving():
    controller = Controller(LIMITS)
    run(controller, 0.0, 1.0, FULL_SPEED, command_period_s=0.1)
    last_stamp = 0.9
    assert controller.status(0.99).time_since_last_command_s == pytest.approx(0.09)
    outputs = run(controller, 1.0, 2.0)  # the policy has stopped
    prev = controller.filter.last_output
    first_zero = next(t for t, r in outputs if r.is_zero)
    # Zero within command_timeout_s plus one output period of the last command, and zero from then on.
    assert first_zero <= last_stamp + LIMITS.command_timeout_s + OUTPUT_PERIOD_S
    assert all(r.is_zero for t, r in outputs if t >= last_stamp + LIMITS.command_timeout_s)
    assert Flag.COMMAND_TIMEOUT in outputs[-1][1].flags
    # ... and it got there by braking within the acceleration limit, not by jumping.
    prev = FULL_SPEED
    for _, r in outputs:
        assert np.all(np.abs(r.twist - prev) <= AMAX * OUTPUT_PERIOD_S + 1e-9)
        prev = r.twist


def test_no_motion_before_the_first_command():
    controller = Controller(LIMITS)
    outputs = run(controller, 0.0, 0.5)
    assert all(r.is_zero and Flag.NO_COMMAND in r.flags for _, r in outputs)


def test_stale_command_is_refused_and_does_not_move_the_arm():
    controller = Controller(LIMITS)
    verdict = controller.on_command(FULL_SPEED, stamp_s=10.0 - 0.5, now_s=10.0)
    assert verdict is CommandVerdict.REJECTED_STALE
    outputs = run(controller, 10.0, 10.5)
    assert all(r.is_zero for _, r in outputs)
    status = controller.status(10.5)
    assert status.commands_rejected_stale == 1 and status.commands_accepted == 0
    assert "old" in status.last_reason


def test_command_stamped_in_the_future_is_refused_as_a_clock_mismatch():
    controller = Controller(LIMITS)
    verdict = controller.on_command(FULL_SPEED, stamp_s=20.0, now_s=10.0)
    assert verdict is CommandVerdict.REJECTED_FUTURE
    assert "clocks" in controller.status(10.0).last_reason


def test_command_older_than_the_active_one_is_refused():
    controller = Controller(LIMITS)
    assert controller.on_command(FULL_SPEED, stamp_s=1.0, now_s=1.05) is CommandVerdict.ACCEPTED
    assert (
        controller.on_command(-FULL_SPEED, stamp_s=0.95, now_s=1.06) is CommandVerdict.REJECTED_OUT_OF_ORDER
    )


def test_watchdog_counts_from_the_stamp_so_transport_delay_is_part_of_the_timeout():
    controller = Controller(LIMITS)
    controller.on_command(FULL_SPEED, stamp_s=0.0, now_s=0.15)
    assert controller.watchdog.deadline_s == pytest.approx(0.0 + LIMITS.command_timeout_s)


def test_non_finite_command_stops_the_arm_instead_of_keeping_the_last_command():
    controller = Controller(LIMITS)
    run(controller, 0.0, 1.0, FULL_SPEED, command_period_s=0.1)
    verdict = controller.on_command(np.array([np.nan, 0, 0, 0, 0, 0]), stamp_s=1.0, now_s=1.0)
    assert verdict is CommandVerdict.REJECTED_NON_FINITE
    outputs = run(controller, 1.0, 1.2)
    assert outputs[-1][1].is_zero
    assert controller.status(1.2).commands_rejected_non_finite == 1


def test_estop_latches_zeroes_output_and_survives_commands_and_release():
    controller = Controller(LIMITS)
    run(controller, 0.0, 1.0, FULL_SPEED, command_period_s=0.1)
    controller.on_estop(True)
    first = controller.step(1.0)
    assert first.is_zero and Flag.ESTOP_LATCHED in first.flags  # immediately, not braked
    controller.on_estop(False)  # button released: still latched
    assert controller.on_command(FULL_SPEED, stamp_s=1.05, now_s=1.05) is CommandVerdict.IGNORED_ESTOP
    outputs = run(controller, 1.01, 2.0, FULL_SPEED, command_period_s=0.1)
    assert all(r.is_zero for _, r in outputs)
    assert controller.status(2.0).estop_latched


def test_estop_reset_is_refused_while_engaged_and_needs_a_fresh_command_afterwards():
    controller = Controller(LIMITS)
    run(controller, 0.0, 0.5, FULL_SPEED, command_period_s=0.1)
    controller.on_estop(True)
    assert controller.reset_estop() is False
    controller.on_estop(False)
    assert controller.reset_estop() is True
    # The command from before the stop does not resume motion.
    outputs = run(controller, 0.5, 0.6)
    assert all(r.is_zero for _, r in outputs)
    # A fresh one does, ramping up from zero.
    outputs = run(controller, 0.6, 1.0, FULL_SPEED, command_period_s=0.1)
    assert outputs[0][1].twist[0] == pytest.approx(AMAX[0] * OUTPUT_PERIOD_S)
    assert np.allclose(outputs[-1][1].twist, FULL_SPEED)


def test_end_effector_pose_that_stops_arriving_stops_the_arm():
    controller = Controller(LIMITS)
    run(controller, 0.0, 1.0, FULL_SPEED, command_period_s=0.1)
    outputs = []
    for i in range(100):
        now = 1.0 + i * OUTPUT_PERIOD_S
        controller.on_command(FULL_SPEED, stamp_s=now, now_s=now)
        outputs.append(controller.step(now))  # no on_ee_pose any more
    assert outputs[-1].is_zero
    assert Flag.EE_POSE_UNKNOWN in outputs[-1].flags


def test_clock_jumping_back_drops_the_command():
    controller = Controller(LIMITS)
    run(controller, 100.0, 101.0, FULL_SPEED, command_period_s=0.1)
    controller.on_ee_pose(CENTRE, 5.0)
    result = controller.step(5.0)
    assert Flag.TIME_WENT_BACKWARDS in result.flags
    outputs = run(controller, 5.01, 5.5)
    assert outputs[-1][1].is_zero


def test_status_counts_what_happened():
    controller = Controller(LIMITS)
    run(controller, 0.0, 1.0, np.array([5.0, 0, 0, 0, 0, 0]), command_period_s=0.1)
    controller.on_command(np.array([np.inf] * 6), stamp_s=1.0, now_s=1.0)
    controller.on_command(FULL_SPEED, stamp_s=0.0, now_s=1.0)
    status = controller.status(1.0)
    assert status.commands_received == 12
    assert status.commands_accepted == 10
    assert status.commands_rejected_non_finite == 1
    assert status.commands_rejected_stale == 1
    assert status.outputs == 100
    assert status.output_flag_counts["speed_clamped"] >= 90
    assert status.output_flag_counts["accel_limited"] >= 9
    assert not status.estop_latched and not status.watchdog_expired
    assert status.last_output[0] == pytest.approx(0.25)


# ---------------------------------------------------------------------- properties

command_values = st.one_of(
    st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=6, max_size=6),
)
event = st.one_of(
    st.tuples(st.just("command"), command_values, st.floats(-0.5, 0.5)),
    st.tuples(st.just("command"), command_values, st.just(0.0)),
    st.tuples(st.just("pose"), st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3), st.just(0.0)),
    st.tuples(st.just("estop"), st.booleans(), st.just(0.0)),
    st.tuples(st.just("reset"), st.just(None), st.just(0.0)),
    st.tuples(st.just("step"), st.just(None), st.floats(-0.05, 0.08)),
    st.tuples(st.just("step"), st.just(None), st.just(OUTPUT_PERIOD_S)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(event, min_size=1, max_size=80))
def test_for_any_event_sequence_outputs_respect_limits_and_estop_holds_until_reset(events):
    controller = Controller(LIMITS)
    latched = pressed = tripped = False
    now, ee, prev, last_step = 50.0, None, np.zeros(6), None
    for kind, value, dt in events:
        if kind == "command":
            controller.on_command(np.array(value), stamp_s=now - dt, now_s=now)
        elif kind == "pose":
            ee = np.array(value)
            controller.on_ee_pose(ee, now)
        elif kind == "estop":
            controller.on_estop(value)
            tripped = tripped or (value and not latched)
            pressed = value
            latched = latched or value
        elif kind == "reset":
            ok = controller.reset_estop()
            assert ok == (not pressed)
            latched = latched and pressed
        else:
            now += dt
            result = controller.step(now)
            out = result.twist
            assert controller.estop.latched == latched
            assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= VMAX * (1 + 1e-12))
            if latched or tripped:
                # Latched: zero. Tripped and already reset: still one zero output.
                assert result.is_zero and Flag.ESTOP_LATCHED in result.flags
            elif last_step is not None and now > last_step and Flag.ACCEL_OVERRIDDEN not in result.flags:
                step_limit = AMAX * min(now - last_step, LIMITS.max_output_interval_s) + 1e-9
                assert np.all(np.abs(out - prev) <= step_limit)
            if ee is not None and controller.fresh_ee_position(now) is not None:
                assert not np.any((ee >= LIMITS.workspace_max) & (out[0:3] > 0))
                assert not np.any((ee <= LIMITS.workspace_min) & (out[0:3] < 0))
            prev, last_step, tripped = out, now, False


# ---------------------------------------------------------------------- parts


def test_estop_latch_only_clears_on_reset_after_release():
    estop = EStop()
    estop.signal(False)
    assert not estop.latched
    estop.signal(True)
    estop.signal(False)
    assert estop.latched and estop.trip_count == 1
    assert estop.reset() and not estop.latched
    estop.trip()
    assert estop.latched and estop.trip_count == 2


def test_watchdog_expires_exactly_at_the_timeout_and_without_any_command():
    watchdog = Watchdog(0.5)
    assert watchdog.expired(0.0)
    watchdog.feed(stamp_s=1.0, now_s=1.1)
    assert not watchdog.expired(1.49)
    assert watchdog.expired(1.5)
    assert watchdog.expired(math.nan)
    watchdog.clear()
    assert watchdog.expired(1.2) and watchdog.deadline_s is None
