"""ROS 2 nodes: thin adapters from ROS parameters and messages to the pure cores."""
