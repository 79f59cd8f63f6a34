"""The embedded simulated workcell (PyBullet, no ROS): layouts, tasks, the arm, the scripted expert.

``Workcell`` is the world and its control interface, ``ScriptedExpert`` the demonstrator,
``run_episode`` the direct (ROS-free) closed loop. The ROS sim_node wraps ``Workcell``.
"""

from vla_ros.sim.expert import ExpertConfig, ScriptedExpert
from vla_ros.sim.rollout import MAX_EPISODE_STEPS, EpisodeResult, run_episode
from vla_ros.sim.tasks import TASK_NAMES, SimState, Task, instruction_text
from vla_ros.sim.workcell import JointStates, Workcell, WorkcellConfig

__all__ = [
    "MAX_EPISODE_STEPS",
    "TASK_NAMES",
    "EpisodeResult",
    "ExpertConfig",
    "JointStates",
    "ScriptedExpert",
    "SimState",
    "Task",
    "Workcell",
    "WorkcellConfig",
    "instruction_text",
    "run_episode",
]
