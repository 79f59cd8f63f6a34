"""Stopping a composition: a callback already dispatched to the executor finishes before its node is
destroyed, so shutting down prints no "exception was never retrieved: cannot use Destroyable"."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.ros


def test_stop_executor_lets_a_running_callback_finish_before_its_node_goes() -> None:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from std_msgs.msg import String

    from vla_ros.nodes.common import stop_executor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("slow_callback", context=context)
    publisher = node.create_publisher(String, "slow_topic", 10)
    started, outcomes = threading.Event(), []

    def slow_timer_callback() -> None:
        started.set()
        time.sleep(0.3)  # still running when the spinning stops
        try:
            publisher.publish(String(data="done"))
            outcomes.append("published")
        except Exception as exc:  # what a destroyed node gives
            outcomes.append(repr(exc))

    node.create_timer(0.01, slow_timer_callback)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    stopping = threading.Event()

    def spin() -> None:
        while not stopping.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    assert started.wait(5.0)
    stopping.set()
    spinner.join(5.0)

    assert stop_executor(executor, timeout_s=5.0) == []
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    # Without the wait the callback met its destroyed node: "cannot use Destroyable because destruction
    # was requested".
    assert outcomes and set(outcomes) == {"published"}, outcomes
