"""Specification of the safety limits' validation: bad configurations are refused at start-up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_ros.control import SafetyConfigError, SafetyLimits

BOX = {"workspace_min_m": (-0.5, -0.5, 0.0), "workspace_max_m": (0.5, 0.5, 0.8)}


def test_scalar_limits_apply_to_every_axis_and_vectors_per_axis():
    limits = SafetyLimits(**BOX, max_linear_speed_m_s=0.2, max_angular_speed_rad_s=(0.5, 0.6, 0.7))
    assert limits.max_linear_speed_m_s == (0.2, 0.2, 0.2)
    assert np.allclose(limits.max_speed, [0.2, 0.2, 0.2, 0.5, 0.6, 0.7])
    assert limits == SafetyLimits(
        **BOX, max_linear_speed_m_s=[0.2] * 3, max_angular_speed_rad_s=[0.5, 0.6, 0.7]
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_linear_speed_m_s": 0.0}, "max_linear_speed_m_s must be finite and > 0"),
        ({"max_linear_speed_m_s": -0.1}, "max_linear_speed_m_s"),
        ({"max_angular_speed_rad_s": math.nan}, "max_angular_speed_rad_s"),
        ({"max_linear_accel_m_s2": (1.0, 1.0)}, "3 numbers"),
        ({"max_angular_accel_rad_s2": "fast"}, "max_angular_accel_rad_s2"),
        ({"workspace_min_m": (0.5, -0.5, 0.0)}, r"workspace box is empty \(x: 0.5 >= 0.5\)"),
        ({"workspace_max_m": (0.5, 0.5, math.inf)}, "workspace_max_m must be 3 finite"),
        ({"command_timeout_s": 0.0}, "command_timeout_s"),
        ({"max_command_age_s": -1.0}, "max_command_age_s"),
        ({"max_output_interval_s": math.inf}, "max_output_interval_s"),
        ({"command_timeout_s": 0.05}, "needed to stop from full speed"),
    ],
)
def test_invalid_limits_are_refused_with_a_message_saying_what_to_change(overrides, message):
    with pytest.raises(SafetyConfigError, match=message):
        SafetyLimits(**{**BOX, **overrides})


def test_stopping_time_is_that_of_the_slowest_braking_axis():
    limits = SafetyLimits(
        **BOX,
        max_linear_speed_m_s=0.3,
        max_linear_accel_m_s2=(3.0, 1.0, 3.0),
        max_angular_speed_rad_s=1.0,
        max_angular_accel_rad_s2=10.0,
    )
    assert limits.stopping_time_s == pytest.approx(0.3)
