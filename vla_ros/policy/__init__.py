"""Policy runtimes behind the :class:`vla_ros.action.Policy` protocol (no ROS imports)."""
