"""package.xml tells rosdep the truth: every ROS package the code and launch files import is declared."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROS_MODULES = {"rclpy", "rcl_interfaces", "ament_index_python", "launch", "launch_ros", "cv_bridge"}
ROS_MODULE_PATTERN = re.compile(r"_(msgs|srvs|interfaces)$")
# Imported only where present, with a fallback: not something rosdep must install everywhere.
OPTIONAL = {"moveit_msgs": "controller_node asks Jazzy's MoveIt Servo when moveit_msgs imports"}


def _declared() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    kinds = ("depend", "exec_depend", "build_depend", "buildtool_depend")
    return {element.text.strip() for kind in kinds for element in root.iter(kind)}


def _imported_ros_packages() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in [*REPO.glob("vla_ros/**/*.py"), *REPO.glob("launch/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ROS_MODULES or ROS_MODULE_PATTERN.search(top):
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_every_ros_package_the_code_imports_is_declared_in_package_xml():
    imported = _imported_ros_packages()
    assert "rclpy" in imported and "sensor_msgs" in imported  # the scan sees the nodes
    assert "cv_bridge" in imported  # vla_ros.image_codec converts through it where ROS has it
    missing = {name: where for name, where in imported.items() if name not in _declared() | set(OPTIONAL)}
    assert not missing, f"add to package.xml: {missing}"


def test_replay_launch_declares_what_plays_the_bag():
    assert "ros2_bag_play_command" in (REPO / "launch" / "replay.launch.py").read_text(encoding="utf-8")
    assert {"ros2bag", "rosbag2_storage_mcap"} <= _declared()
