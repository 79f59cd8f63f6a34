"""vla_ros against a Gazebo (gz sim) world on a full ROS 2 install.

Expects a world with an arm whose end effector MoveIt Servo drives, a fixed RGB camera, and the
ros_gz_bridge topics in config/ros_gz_bridge.yaml (clock, camera, joint states, end-effector pose).
Every node runs with use_sim_time so timeouts and stamps follow the simulation clock.

    ros2 launch vla_ros gazebo.launch.py model_dir:=/models/openvla-7b
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES_TEXT


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("vla_ros"))
    passthrough = ["model_dir", "adapter_dir", "quantization", "precision", "unnorm_key"]
    declared = [
        DeclareLaunchArgument(name, default_value="") for name in ("model_dir", "adapter_dir", "unnorm_key")
    ]
    declared += [
        DeclareLaunchArgument("quantization", default_value="none"),
        DeclareLaunchArgument(
            "precision", default_value=DEFAULT_PRECISION, description=PRECISION_CHOICES_TEXT
        ),
        DeclareLaunchArgument("camera_topic", default_value="/camera/image_raw"),
        DeclareLaunchArgument("bridge_config", default_value=str(share / "config" / "ros_gz_bridge.yaml")),
    ]
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="vla_gz_bridge",
        output="screen",
        parameters=[{"config_file": LaunchConfiguration("bridge_config"), "use_sim_time": True}],
    )
    vla = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "vla.launch.py")),
        launch_arguments={
            **{name: LaunchConfiguration(name) for name in passthrough},
            "camera_topic": LaunchConfiguration("camera_topic"),
            "output_mode": "servo",
            "use_sim_time": "true",
        }.items(),
    )
    return LaunchDescription([*declared, bridge, vla])
