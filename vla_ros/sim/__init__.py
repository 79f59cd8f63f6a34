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

# Names are imported when first used (PEP 562), so that importing a light part (tasks, layouts) does not
# load PyBullet: the command line's --help and the text-only commands stay fast and print no banner.
_EXPORTS = {
    "ExpertConfig": "vla_ros.sim.expert",
    "ScriptedExpert": "vla_ros.sim.expert",
    "EpisodeResult": "vla_ros.sim.rollout",
    "run_episode": "vla_ros.sim.rollout",
    "MAX_EPISODE_STEPS": "vla_ros.sim.tasks",
    "TASK_NAMES": "vla_ros.sim.tasks",
    "SimState": "vla_ros.sim.tasks",
    "Task": "vla_ros.sim.tasks",
    "instruction_text": "vla_ros.sim.tasks",
    "JointStates": "vla_ros.sim.workcell",
    "Workcell": "vla_ros.sim.workcell",
    "WorkcellConfig": "vla_ros.sim.workcell",
    "workcell_config": "vla_ros.sim.workcell",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vla_ros.sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
