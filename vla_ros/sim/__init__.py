"""The embedded simulated workcell (PyBullet, no ROS): layouts, tasks, the arm, the scripted expert.

``Workcell`` is the world and its control interface, ``ScriptedExpert`` the demonstrator,
``run_episode`` the direct (ROS-free) closed loop. The ROS sim_node wraps ``Workcell``::

    cell = Workcell(WorkcellConfig(image_width=224, image_height=224))
    instruction = cell.reset(seed=3, task="pick_place")   # "put the red gear in the reject bin"
    expert = ScriptedExpert(cell)
    while not cell.success() and cell.episode_steps < MAX_EPISODE_STEPS:
        image = cell.render()                              # HxWx3 uint8, fixed scene camera
        cell.apply_action(expert.predict_action(image, instruction).vector)

A node driving it from the controller instead calls ``apply_twist(twist, dt_s)`` and
``set_gripper(opening)``, publishes ``render()``, ``ee_pose()``, ``joint_states()``, ``scene()`` and
``sim_time_s`` (the /clock), and serves ``reset`` and ``success``. A Workcell is not thread-safe:
call it from one thread (one executor callback group).
"""

from vla_ros.sim.expert import ExpertConfig, ScriptedExpert
from vla_ros.sim.rollout import MAX_EPISODE_STEPS, EpisodeResult, run_episode
from vla_ros.sim.tasks import TASK_NAMES, SimState, Task, instruction_text
from vla_ros.sim.workcell import JointStates, Workcell, WorkcellConfig, workcell_config

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
    "workcell_config",
]
