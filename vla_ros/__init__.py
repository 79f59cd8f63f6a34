"""vla_ros: OpenVLA vision-language-action policies on ROS 2 robot arms.

This package also hosts the generated message modules (``vla_ros.msg``, ``vla_ros.srv``) once the
package is built with colcon; the pure-Python cores import nothing from ROS.
"""

__version__ = "0.1.0"
