"""vla_ros on a real arm: disambiguation -> policy -> safety controller -> MoveIt Servo (or a pose target).

    ros2 launch vla_ros vla.launch.py model_dir:=/models/openvla-7b camera_topic:=/camera/color/image_raw

Parameters come from config/*.yaml in this package's share directory; the launch arguments below
override the ones a user changes per run.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES_TEXT

ARGUMENTS = {
    "model_dir": ("", "OpenVLA checkpoint directory (Hugging Face layout, safetensors)"),
    "adapter_dir": ("", "LoRA adapter directory; empty for none"),
    "precision": (DEFAULT_PRECISION, PRECISION_CHOICES_TEXT),
    "quantization": ("none", "none | 8bit | 4bit | 4bit-fp4"),
    "unnorm_key": ("", "dataset statistics key; empty when the checkpoint has exactly one"),
    "inference_backend": (
        "local",
        "local: load model_dir here | remote: use the policy server at remote_url",
    ),
    "remote_url": ("http://127.0.0.1:8000", "a `vla-ros serve` policy server (inference_backend remote)"),
    "camera_topic": ("/camera/image_raw", "sensor_msgs/Image topic of the camera the policy sees"),
    "wrist_camera_topic": (
        "/camera/wrist/image_raw",
        "sensor_msgs/Image topic of the gripper camera; read only by two-view checkpoints (num_images 2)",
    ),
    "output_mode": ("servo", "controller output: servo | pose"),
    "servo_twist_topic": ("/servo_node/delta_twist_cmds", "MoveIt Servo twist input"),
    "ee_pose_topic": ("/ee_pose", "geometry_msgs/PoseStamped of the end effector in the base frame"),
    "use_sim_time": ("false", "follow /clock"),
    "disambiguation": ("true", "start the disambiguation node for operator text"),
}


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("vla_ros"))
    config = share / "config"
    args = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    use_sim_time = ParameterValue(args["use_sim_time"], value_type=bool)

    policy = Node(
        package="vla_ros",
        executable="policy_node",
        name="policy_node",
        namespace="vla",
        output="screen",
        parameters=[
            str(config / "policy.yaml"),
            {
                "model_dir": args["model_dir"],
                "adapter_dir": args["adapter_dir"],
                "precision": args["precision"],
                "quantization": args["quantization"],
                "unnorm_key": args["unnorm_key"],
                "inference_backend": args["inference_backend"],
                "remote_url": args["remote_url"],
                "use_sim_time": use_sim_time,
            },
        ],
        remappings=[("image_raw", args["camera_topic"]), ("wrist/image_raw", args["wrist_camera_topic"])],
    )
    controller = Node(
        package="vla_ros",
        executable="controller_node",
        name="controller_node",
        namespace="vla",
        output="screen",
        parameters=[
            str(config / "controller.yaml"),
            {"output_mode": args["output_mode"], "use_sim_time": use_sim_time},
        ],
        remappings=[
            ("servo_twist_out", args["servo_twist_topic"]),
            ("ee_pose", args["ee_pose_topic"]),
        ],
    )
    disambiguation = Node(
        package="vla_ros",
        executable="disambiguation_node",
        name="disambiguation_node",
        namespace="vla",
        output="screen",
        parameters=[str(config / "disambiguation_node.yaml"), {"use_sim_time": use_sim_time}],
        condition=IfCondition(args["disambiguation"]),
    )
    declared = [
        DeclareLaunchArgument(name, default_value=d, description=desc)
        for name, (d, desc) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, policy, controller, disambiguation])
