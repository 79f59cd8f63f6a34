"""launch/vla.launch.py under the real ROS 2 launch system (full ROS install only).

`launch`, `launch_ros` and `launch_pytest` are not on PyPI, so on a venv built from the ros-jazzy
wheels this module is skipped; the same nodes are tested over DDS in test_nodes_*.py.
"""

from __future__ import annotations

import time

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest is not installed (it ships with a full ROS 2 install, not PyPI)"
)
pytest.importorskip("launch_ros", reason="launch_ros is not installed (full ROS 2 install only)")

from pathlib import Path  # noqa: E402

from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from launch import LaunchDescription  # noqa: E402

pytestmark = pytest.mark.ros

EXPECTED_NODES = {"/vla/policy_node", "/vla/controller_node", "/vla/disambiguation_node"}


@launch_pytest.fixture
def vla_launch():
    share = Path(get_package_share_directory("vla_ros"))
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "vla.launch.py")),
        launch_arguments={"output_mode": "pose", "model_dir": "/nonexistent/model"}.items(),
    )
    return LaunchDescription([include, launch_pytest.actions.ReadyToTest()])


@pytest.mark.launch(fixture=vla_launch)
def test_nodes_start_and_stay_up_without_a_model():
    """A missing model leaves the policy node unconfigured but alive; the other nodes run."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        from rclpy.executors import SingleThreadedExecutor

        node = rclpy.create_node("launch_probe", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        names: set[str] = set()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not names >= EXPECTED_NODES:
            executor.spin_once(timeout_sec=0.2)
            names = {f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces()}
        assert names >= EXPECTED_NODES, names
        time.sleep(2.0)
        names = {f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces()}
        assert names >= EXPECTED_NODES, f"a node died after start: {names}"
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
