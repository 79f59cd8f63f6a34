"""Live replay on a full ROS 2 install: `ros2 bag play` into the policy and controller nodes.

    ros2 launch vla_ros replay.launch.py bag:=/data/demo_bag model_dir:=/models/openvla-7b rate:=1.0

The bag's camera, instruction and end-effector pose topics are played (with `--clock`, all nodes on
`use_sim_time`, so the recorded stamps are fresh to them) onto the nodes in namespace `replay`; the
controller runs with `output_mode` sim, so nothing reaches an arm. Playback starts `play_delay_s`
after launch (the model must be loaded by then) and the launch ends a few seconds after it, unless
`loop` is set. With `record_dir` the nodes' outputs are recorded to a new bag there. Without a full
ROS install, `vla-ros replay-bag` does the same in one process and writes a report.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    OpaqueFunction,
    RegisterEventHandler,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.eval.live import ros2_bag_play_command
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES_TEXT

NAMESPACE = "replay"
ARGUMENTS = {
    "bag": ("", "rosbag2 directory (or .mcap / .db3 file) to play"),
    "rate": ("1.0", "playback speed factor"),
    "loop": ("false", "play again and again until the launch is stopped"),
    "model_dir": ("", "OpenVLA checkpoint directory (Hugging Face layout, safetensors)"),
    "precision": (DEFAULT_PRECISION, PRECISION_CHOICES_TEXT),
    "quantization": ("none", "none | 8bit | 4bit | 4bit-fp4"),
    "unnorm_key": ("", "dataset statistics key; empty when the checkpoint has exactly one"),
    "camera_topic": (
        "/camera/image_raw",
        "camera topic in the bag: sensor_msgs/Image, or CompressedImage when it ends in /compressed",
    ),
    "instruction_topic": ("/vla/instruction", "instruction topic in the bag"),
    "instruction_input": (
        "instruction",
        "policy input it feeds: instruction (vla_ros/Instruction) or instruction_text (std_msgs/String)",
    ),
    "ee_pose_topic": ("/ee_pose", "geometry_msgs/PoseStamped end-effector topic in the bag"),
    "play_delay_s": ("15.0", "seconds between launch and playback (time to load the model)"),
    "record_dir": ("", "record the nodes' outputs into a new bag at this path; empty: do not record"),
}
OUTPUT_TOPICS = ("twist_cmd", "gripper_cmd", "action_step", "sim_twist_out", "gripper_out")


def _is_true(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _playback(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    if not value["bag"]:
        raise RuntimeError("launch argument bag is empty: pass bag:=/path/to/bag")
    camera_input = "image_raw/compressed" if value["camera_topic"].endswith("/compressed") else "image_raw"
    remaps = {
        value["camera_topic"]: f"/{NAMESPACE}/{camera_input}",
        value["instruction_topic"]: f"/{NAMESPACE}/{value['instruction_input']}",
        value["ee_pose_topic"]: f"/{NAMESPACE}/ee_pose",
    }
    loop = _is_true(value["loop"])
    play = ExecuteProcess(
        cmd=ros2_bag_play_command(value["bag"], remaps, rate=float(value["rate"]), loop=loop),
        name="bag_play",
        output="screen",
    )
    actions = [TimerAction(period=float(value["play_delay_s"]), actions=[play])]
    if not loop:
        # Let the last inference finish and its outputs be recorded, then end the launch.
        done = TimerAction(period=3.0, actions=[EmitEvent(event=Shutdown(reason="bag played"))])
        actions.append(RegisterEventHandler(OnProcessExit(target_action=play, on_exit=[done])))
    if value["record_dir"]:
        topics = [f"/{NAMESPACE}/{t}" for t in OUTPUT_TOPICS] + ["/diagnostics"]
        actions.append(
            ExecuteProcess(
                cmd=["ros2", "bag", "record", "--use-sim-time", "-o", value["record_dir"], *topics],
                name="bag_record",
                output="screen",
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    config = Path(get_package_share_directory("vla_ros")) / "config"
    args = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    policy = Node(
        package="vla_ros",
        executable="policy_node",
        name="policy_node",
        namespace=NAMESPACE,
        output="screen",
        parameters=[
            str(config / "policy.yaml"),
            {
                "model_dir": args["model_dir"],
                "precision": args["precision"],
                "quantization": args["quantization"],
                "unnorm_key": args["unnorm_key"],
                "use_sim_time": True,
            },
        ],
    )
    controller = Node(
        package="vla_ros",
        executable="controller_node",
        name="controller_node",
        namespace=NAMESPACE,
        output="screen",
        parameters=[str(config / "controller.yaml"), {"output_mode": "sim", "use_sim_time": True}],
    )
    declared = [
        DeclareLaunchArgument(name, default_value=d, description=desc)
        for name, (d, desc) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, policy, controller, OpaqueFunction(function=_playback)])
