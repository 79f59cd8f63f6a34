"""A policy gone wrong, as its own process: 1 kHz of twist commands on ``twist_cmd`` for ``argv[1]`` s.

Finite commands beyond the speed limits alternate with NaN, +-inf and +-1e308. Waits for a subscriber
first; prints one JSON line: the first and last command stamps (s) and how many commands it sent.
Own process, own interpreter lock, own DDS participant, as a policy node is deployed; needs only
rclpy and geometry_msgs (the ROS environment of the caller, e.g. its ROS_DOMAIN_ID).
"""

import json
import sys
import time

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy

RATE_HZ = 1000.0
VALUES = [0.05, float("nan"), 1e308, 0.3, float("-inf"), -1e308, 0.05, float("inf"), -0.3, 0.08]


def main() -> int:
    duration_s = float(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("flooding_policy")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(TwistStamped, "twist_cmd", qos)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    msg = TwistStamped()
    msg.header.frame_id = "panda_link0"
    clock = node.get_clock()
    first = last = clock.now().nanoseconds * 1e-9
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < duration_s:
        v = VALUES[sent % len(VALUES)]
        msg.twist.linear.x = msg.twist.angular.z = v
        msg.twist.linear.y = -v
        now = clock.now()
        msg.header.stamp = now.to_msg()
        pub.publish(msg)
        last = now.nanoseconds * 1e-9
        sent += 1
        # Deadlines on the monotonic clock, so sleep overshoot does not lower the rate.
        delay = start + sent / RATE_HZ - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"first": first, "last": last, "sent": sent}), flush=True)
    time.sleep(0.3)  # let the reliable writer deliver the last commands
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
