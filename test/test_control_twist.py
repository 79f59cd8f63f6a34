"""Specification of the action conversions: twist = delta / period, gripper, and the pose target mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.action import Action
from vla_ros.control import PoseIntegrator, SafetyLimits, action_to_twist, gripper_command
from vla_ros.control.twist import quaternion_angle_rad, quaternion_from_rotation_vector, quaternion_multiply

finite = st.floats(-1.0, 1.0)
period = st.floats(1e-3, 2.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=7, max_size=7), period)
def test_twist_is_the_action_delta_divided_by_the_control_period(vector, period_s):
    twist = action_to_twist(np.array(vector), period_s)
    assert twist.shape == (6,)
    # Multiplying back by the period recovers the per-step delta: velocity, not position.
    assert np.allclose(twist * period_s, vector[:6], rtol=1e-12, atol=1e-15)


def test_twist_accepts_an_action_and_ignores_the_gripper():
    action = Action(vector=[0.01, -0.02, 0.005, 0.1, 0.0, -0.05, 1.0])
    assert np.allclose(action_to_twist(action, 0.2), [0.05, -0.1, 0.025, 0.5, 0.0, -0.25])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite, min_size=7, max_size=7),
    period,
    st.permutations(range(6)),
    st.lists(st.sampled_from([-1, 1]), min_size=6, max_size=6),
    st.lists(st.floats(0.0, 3.0), min_size=6, max_size=6),
)
def test_axis_remap_sign_and_scale_apply_per_robot_axis(vector, period_s, mapping, sign, scale):
    twist = action_to_twist(np.array(vector), period_s, axis_scale=scale, axis_sign=sign, axis_map=mapping)
    for i in range(6):
        assert twist[i] == pytest.approx(
            sign[i] * scale[i] * vector[mapping[i]] / period_s, rel=1e-12, abs=1e-15
        )


def test_swapping_x_and_y_for_a_robot_whose_base_frame_is_rotated():
    twist = action_to_twist(
        [0.1, 0.2, 0, 0, 0, 0, 0], 1.0, axis_sign=(-1, 1, 1, 1, 1, 1), axis_map=(1, 0, 2, 3, 4, 5)
    )
    assert np.allclose(twist, [-0.2, 0.1, 0, 0, 0, 0])


def test_non_finite_actions_pass_through_for_the_safety_filter_to_reject():
    twist = action_to_twist([math.nan, 0, 0, 0, 0, 0, 1], 0.2)
    assert math.isnan(twist[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control_period_s": 0.0}, "control_period_s"),
        ({"control_period_s": math.inf}, "control_period_s"),
        ({"axis_map": (0, 0, 2, 3, 4, 5)}, "permutation"),
        ({"axis_map": (0, 1, 2)}, "permutation"),
        ({"axis_sign": (1, 1, 1, 1, 1, 0)}, "axis_sign"),
        ({"axis_scale": (1, 1, 1, 1, 1, -1)}, "axis_sign to flip"),
    ],
)
def test_invalid_conversion_options_are_refused_with_a_hint(kwargs, message):
    args = {"control_period_s": 0.2, **kwargs}
    with pytest.raises(ValueError, match=message):
        action_to_twist(np.zeros(7), **args)


def test_action_with_wrong_length_is_refused():
    with pytest.raises(ValueError, match="7 values"):
        action_to_twist(np.zeros(6), 0.2)


# ---------------------------------------------------------------------- gripper


@pytest.mark.parametrize(
    ("value", "invert", "expected"),
    [
        (1.0, False, (1.0, False)),  # OpenVLA: 1 = open
        (0.0, False, (0.0, True)),
        (0.5, False, (0.5, False)),  # exactly at the threshold stays open
        (0.49, False, (0.49, True)),
        (1.0, True, (0.0, True)),  # a policy trained with 1 = closed
        (0.2, True, (0.8, False)),
        (1.7, False, (1.0, False)),  # clipped to [0, 1]
        (-0.3, False, (0.0, True)),
    ],
)
def test_gripper_threshold_and_inversion(value, invert, expected):
    position, close = gripper_command(value, threshold=0.5, invert=invert)
    assert position == pytest.approx(expected[0])
    assert close is expected[1]


@settings(max_examples=200, deadline=None)
@given(st.floats(-10, 10), st.floats(0.0, 1.0), st.booleans())
def test_gripper_position_is_an_opening_in_unit_range_consistent_with_close(value, threshold, invert):
    position, close = gripper_command(value, threshold=threshold, invert=invert)
    assert 0.0 <= position <= 1.0
    assert close == (position < threshold)


def test_gripper_refuses_non_finite_values_and_bad_thresholds():
    with pytest.raises(ValueError, match="non-finite"):
        gripper_command(math.nan)
    with pytest.raises(ValueError, match="threshold"):
        gripper_command(0.5, threshold=1.5)


# ---------------------------------------------------------------------- pose target mode

LIMITS = SafetyLimits(workspace_min_m=(-0.5, -0.5, 0.0), workspace_max_m=(0.5, 0.5, 0.8))
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def test_pose_target_integrates_the_twist_from_the_current_pose():
    integrator = PoseIntegrator.from_limits(LIMITS, max_lead_m=1.0, max_lead_rad=3.0)
    ee = np.array([0.1, 0.0, 0.4])
    first = integrator.step(np.array([0.1, 0, 0, 0, 0, 0.5]), 0.1, ee, IDENTITY)
    assert np.allclose(first.position_m, ee)  # the first target is where the arm is
    target = first
    for _ in range(4):
        target = integrator.step(np.array([0.1, 0, 0, 0, 0, 0.5]), 0.1, ee, IDENTITY)
    assert np.allclose(target.position_m, [0.14, 0.0, 0.4])
    expected = quaternion_from_rotation_vector(np.array([0, 0, 0.2]))
    assert quaternion_angle_rad(target.orientation_xyzw, expected) < 1e-9
    assert np.linalg.norm(target.orientation_xyzw) == pytest.approx(1.0)


def test_pose_target_stays_within_its_lead_of_an_arm_that_does_not_follow():
    integrator = PoseIntegrator.from_limits(LIMITS, max_lead_m=0.05, max_lead_rad=0.2)
    ee = np.array([0.0, 0.0, 0.4])
    for _ in range(100):
        target = integrator.step(np.array([0.25, 0.1, 0, 1.0, 0, 0]), 0.05, ee, IDENTITY)
    assert np.linalg.norm(target.position_m - ee) == pytest.approx(0.05)
    assert quaternion_angle_rad(target.orientation_xyzw, IDENTITY) == pytest.approx(0.2)


def test_zero_twist_holds_the_arm_where_it_is():
    integrator = PoseIntegrator.from_limits(LIMITS)
    for _ in range(5):
        integrator.step(np.array([0.25, 0, 0, 0, 0, 0]), 0.05, np.array([0, 0, 0.4]), IDENTITY)
    here = np.array([0.01, 0.0, 0.4])
    q_here = quaternion_from_rotation_vector(np.array([0.0, 0.1, 0.0]))
    target = integrator.step(np.zeros(6), 0.05, here, q_here)
    assert np.allclose(target.position_m, here)
    assert quaternion_angle_rad(target.orientation_xyzw, q_here) < 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6), min_size=1, max_size=30),
    st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(0.0, 0.8)),
)
def test_pose_target_never_leaves_the_workspace(twists, start):
    integrator = PoseIntegrator.from_limits(LIMITS, max_lead_m=10.0)
    ee = np.array(start)
    for twist in twists:
        target = integrator.step(np.array(twist), 0.2, ee, IDENTITY)
        assert np.all(target.position_m >= LIMITS.workspace_min - 1e-12)
        assert np.all(target.position_m <= LIMITS.workspace_max + 1e-12)
        ee = target.position_m  # the arm reaches each target


def test_pose_target_for_an_arm_outside_the_box_never_goes_further_out():
    integrator = PoseIntegrator.from_limits(LIMITS)
    outside = np.array([0.7, 0.0, 0.4])
    integrator.step(np.zeros(6), 0.1, outside, IDENTITY)
    further = integrator.step(np.array([0.25, 0, 0, 0, 0, 0]), 0.1, outside, IDENTITY)
    assert further.position_m[0] == pytest.approx(0.7)
    back = integrator.step(np.array([-0.25, 0, 0, 0, 0, 0]), 0.1, outside, IDENTITY)
    assert back.position_m[0] < 0.7


def test_pose_target_needs_the_current_pose():
    integrator = PoseIntegrator.from_limits(LIMITS)
    with pytest.raises(ValueError, match="current pose"):
        integrator.step(np.zeros(6), 0.1, [math.nan, 0, 0], IDENTITY)
    with pytest.raises(ValueError, match="quaternion"):
        integrator.step(np.zeros(6), 0.1, [0, 0, 0.4], [0, 0, 0, 0])


def test_quaternion_helpers_compose_rotations_about_one_axis():
    a = quaternion_from_rotation_vector(np.array([0, 0, 0.3]))
    b = quaternion_from_rotation_vector(np.array([0, 0, 0.4]))
    assert quaternion_angle_rad(quaternion_multiply(a, b), IDENTITY) == pytest.approx(0.7)
