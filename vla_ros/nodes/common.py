"""Small pieces every node needs: parameter declaration with descriptions, stamps, diagnostics."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Latched state (e-stop, scene of a fixed cell): late joiners get the last value.
LATCHED_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a parameter once, with its type taken from the default, and return its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


def stamp_to_s(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_stamp(t_s: float) -> Time:
    sec = math.floor(t_s)
    nanosec = round((t_s - sec) * 1e9)
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=int(sec), nanosec=int(nanosec))


def now_s(node: Node) -> float:
    """The node's clock in seconds: sim time under use_sim_time, wall time otherwise."""
    return node.get_clock().now().nanoseconds * 1e-9


def diagnostic_array(
    node: Node, name: str, level: int, message: str, values: dict[str, Any]
) -> DiagnosticArray:
    status = DiagnosticStatus(
        level=bytes([level]) if isinstance(level, int) else level,
        name=f"{node.get_name()}: {name}",
        message=message,
        hardware_id=node.get_fully_qualified_name(),
        values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def sanitize_text(text: str, max_chars: int) -> str:
    """Strip control characters and surrounding space; raise ValueError if nothing usable remains."""
    if len(text) > max_chars:
        raise ValueError(f"instruction is {len(text)} characters long; the limit is {max_chars}")
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch == " ").strip()
    if not cleaned:
        raise ValueError("instruction is empty after removing control characters")
    return cleaned


def stop_executor(executor, timeout_s: float = 5.0) -> list[BaseException]:
    """Shut down an executor whose spinning has ended once the callbacks it dispatched have finished, and
    return their exceptions nobody retrieved. Call it before destroying the executor's nodes.

    rclpy Jazzy's ``Executor.shutdown`` waits for nothing (its work-tracker wait is skipped once the
    shutdown flag is set) and ``MultiThreadedExecutor`` never joins its thread pool. A callback still
    queued or running then meets a destroyed node, or the executor's destroyed guard condition, and fails
    with "cannot use Destroyable because destruction was requested"; rclpy prints that at exit as "The
    following exception was never retrieved". Here queued callbacks are dropped and running ones finish
    (within ``timeout_s``, in case one blocks) before anything is destroyed.
    """
    pool = getattr(executor, "_executor", None)  # MultiThreadedExecutor's thread pool
    if isinstance(pool, ThreadPoolExecutor):
        # A dropped callback is an rclpy Task holding a coroutine never started: cancelling it closes the
        # coroutine, which would otherwise warn "coroutine ... was never awaited" when collected.
        queue = getattr(pool, "_work_queue", None)
        for item in list(getattr(queue, "queue", ())):
            cancel = getattr(getattr(item, "fn", None), "cancel", None)
            if callable(cancel):
                cancel()
        drain = threading.Thread(
            target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
        )
        drain.start()
        drain.join(timeout_s)
    else:  # callbacks run in the spinning thread; the tracker counts any still running
        tracker = getattr(executor, "_work_tracker", None)
        if tracker is not None:
            tracker.wait(timeout_s)
    errors = [
        task.exception()  # marks it retrieved
        for task in list(getattr(executor, "_futures", ()))
        if task.done() and task.exception() is not None
    ]
    executor.shutdown(timeout_sec=0)
    return errors


def spin_node(node_factory, args=None) -> int:
    """Run one node until SIGINT; used by every executable's ``main``."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    rclpy.init(args=args)
    node = node_factory()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop_executor(executor)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
