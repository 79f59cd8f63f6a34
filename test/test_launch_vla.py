"""launch/vla.launch.py under the real ROS 2 launch system (full ROS install only).

`launch`, `launch_ros` and `launch_pytest` are not on PyPI, so on a venv built from the ros-jazzy
wheels this module is skipped; the same nodes are tested over DDS in test_nodes_*.py.
"""

from __future__ import annotations

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest is not installed (it ships with a full ROS 2 install, not PyPI)"
)
launch_ros = pytest.importorskip("launch_ros", reason="launch_ros is not installed (full ROS 2 install only)")

from pathlib import Path  # noqa: E402

from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing.actions import ReadyToTest  # noqa: E402

from launch import LaunchDescription  # noqa: E402

pytestmark = pytest.mark.ros


@launch_pytest.fixture
def vla_launch():
    share = Path(get_package_share_directory("vla_ros"))
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "vla.launch.py")),
        launch_arguments={"output_mode": "pose", "model_dir": "/nonexistent/model"}.items(),
    )
    return LaunchDescription([include, ReadyToTest()])


@launch_pytest.test(launch_description=vla_launch)
async def test_nodes_start_and_stay_up_without_a_model(launch_context):
    """A missing model leaves the policy node unconfigured but alive, and the controller running."""
    import asyncio

    import rclpy

    rclpy.init()
    try:
        node = rclpy.create_node("launch_probe")
        deadline = asyncio.get_event_loop().time() + 20.0
        names: set[str] = set()
        while asyncio.get_event_loop().time() < deadline:
            names = {f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces()}
            if {"/vla/policy_node", "/vla/controller_node", "/vla/disambiguation_node"} <= names:
                break
            await asyncio.sleep(0.5)
        assert {"/vla/policy_node", "/vla/controller_node", "/vla/disambiguation_node"} <= names, names
        node.destroy_node()
    finally:
        rclpy.shutdown()
