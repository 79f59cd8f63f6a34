"""The embedded PyBullet workcell under ros2 launch: sim, policy, controller (sim output), disambiguation.

    ros2 launch vla_ros sim.launch.py model_dir:=/models/openvla-7b task:=pick_place
    ros2 topic pub --once /vla/operator_text std_msgs/msg/String "{data: 'put the red gear in the bin'}"

Every node runs with use_sim_time (sim_node publishes /clock) and the parameters of config/sim.yaml;
topics follow vla.launch.py (nodes in /vla, camera on /camera/image_raw, arm pose on /ee_pose).
Separate processes cannot share the workcell, so the scripted expert is not available here: it runs
in the single-process loop, `vla-ros sim --policy expert`.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES_TEXT

ARGUMENTS = {
    "model_dir": ("", "OpenVLA checkpoint directory (Hugging Face layout, safetensors)"),
    "device": ("cpu", "cpu | cuda"),
    "precision": (DEFAULT_PRECISION, PRECISION_CHOICES_TEXT),
    "task": ("pick_place", "pick_place | push | move_to | move_to_part"),
    "seed": ("0", "layout seed of the first episode"),
    "real_time_factor": ("1.0", "sim seconds per wall second (lower it for a slow policy)"),
}
CAMERA_TOPIC = "/camera/image_raw"
EE_POSE_TOPIC = "/ee_pose"


def generate_launch_description() -> LaunchDescription:
    config = str(Path(get_package_share_directory("vla_ros")) / "config" / "sim.yaml")
    args = {name: LaunchConfiguration(name) for name in ARGUMENTS}

    def node(executable: str, overrides: dict, remappings: list) -> Node:
        return Node(
            package="vla_ros",
            executable=executable,
            name=executable,
            namespace="vla",
            output="screen",
            parameters=[config, {"use_sim_time": True, **overrides}],
            remappings=remappings,
        )

    sim = node(
        "sim_node",
        {
            "task": args["task"],
            "seed": ParameterValue(args["seed"], value_type=int),
            "real_time_factor": ParameterValue(args["real_time_factor"], value_type=float),
        },
        [
            ("image_raw", CAMERA_TOPIC),
            ("ee_pose", EE_POSE_TOPIC),
            ("joint_states", "/joint_states"),
        ],
    )
    policy = node(
        "policy_node",
        {"model_dir": args["model_dir"], "device": args["device"], "precision": args["precision"]},
        [("image_raw", CAMERA_TOPIC)],
    )
    controller = node("controller_node", {}, [("ee_pose", EE_POSE_TOPIC)])
    disambiguation = node("disambiguation_node", {}, [])
    declared = [
        DeclareLaunchArgument(name, default_value=d, description=desc)
        for name, (d, desc) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, sim, policy, controller, disambiguation])
