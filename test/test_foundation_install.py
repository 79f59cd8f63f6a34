"""The colcon install space is what `ros2 launch` and users see: one `vla_ros` with our code and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]


def _install_prefix() -> Path:
    import vla_ros

    # <prefix>/lib/pythonX.Y/site-packages/vla_ros/__init__.py
    return Path(vla_ros.__file__).resolve().parents[4]


def test_generated_messages_and_our_modules_are_one_package_from_the_install_space() -> None:
    import vla_ros
    import vla_ros.action
    import vla_ros.msg
    import vla_ros.srv

    package_dir = Path(vla_ros.__file__).resolve().parent
    assert Path(vla_ros.msg.__file__).resolve().parent.parent == package_dir
    assert Path(vla_ros.action.__file__).resolve().parent == package_dir
    assert package_dir != REPO / "vla_ros", "tests must run against the install space, not the source tree"
    assert hasattr(vla_ros.msg, "ActionStep") and hasattr(vla_ros.srv, "ResetEpisode")


def test_install_space_has_what_ros2_launch_expects() -> None:
    prefix = _install_prefix()
    assert (prefix / "share/ament_index/resource_index/packages/vla_ros").is_file()
    assert (prefix / "share/vla_ros/package.xml").is_file()
    for executable in ("policy_node", "controller_node", "disambiguation_node", "sim_node"):
        path = prefix / "lib/vla_ros" / executable
        assert path.is_file() and os.access(path, os.X_OK), path
    assert (prefix / "share/vla_ros/launch").is_dir()
    assert (prefix / "share/vla_ros/config").is_dir()
    assert prefix.as_posix() in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)


def test_ament_index_finds_the_package() -> None:
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    assert Path(get_package_prefix("vla_ros")).resolve() == _install_prefix()
    assert Path(get_package_share_directory("vla_ros"), "package.xml").is_file()


def test_cli_entry_point_prints_help() -> None:
    result = subprocess.run(["vla-ros", "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: vla-ros" in result.stdout


def test_cli_module_runs_from_python() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vla_ros.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vla-ros ")
