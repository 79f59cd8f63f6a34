"""Pure-Python install of vla_ros, for machines without ROS (training or bag evaluation on a GPU box).

On a ROS 2 machine build with colcon instead: the package is `ament_cmake` (see package.xml), because
the same `vla_ros` Python package also carries the generated messages, which only colcon builds.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["vla_ros", "vla_ros.*"]))
