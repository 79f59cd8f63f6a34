"""The controller's pure core: safety limits, filter, watchdog, e-stop, and action conversion.

No ROS imports here; the controller node adapts messages and parameters to these classes.
"""

from vla_ros.control.controller import CommandVerdict, Controller, ControllerStatus
from vla_ros.control.estop import EStop
from vla_ros.control.limits import SafetyConfigError, SafetyLimits
from vla_ros.control.safety_filter import FilterResult, Flag, SafetyFilter
from vla_ros.control.twist import PoseIntegrator, PoseTarget, action_to_twist, gripper_command
from vla_ros.control.watchdog import Watchdog

__all__ = [
    "CommandVerdict",
    "Controller",
    "ControllerStatus",
    "EStop",
    "FilterResult",
    "Flag",
    "PoseIntegrator",
    "PoseTarget",
    "SafetyConfigError",
    "SafetyFilter",
    "SafetyLimits",
    "Watchdog",
    "action_to_twist",
    "gripper_command",
]
