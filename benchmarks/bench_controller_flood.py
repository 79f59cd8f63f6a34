"""Does the controller keep its output rate under a 1 kHz command flood? Three real processes over DDS.

- the controller: the installed ``lib/vla_ros/controller_node`` (its own ``main``, as ``ros2 run`` starts
  it) of whatever install space is sourced, ``output_mode`` sim;
- the flood: a separate rclpy process publishing TwistStamped on ``twist_cmd`` at ``--rate-hz`` for
  ``--seconds``, mixing finite (beyond the speed limits), NaN, +-inf and +-1e308 values (``--mix``),
  then ``--tail-s`` of one finite, moving command so the watchdog has something to stop;
- this process: publishes the end-effector pose (so commands are followed, not refused for a stale
  pose) and records every output's stamp and receive time.

Per run it prints one row: the flood's configured and achieved rate, the commands the controller took
(its diagnostics' ``commands_received``), the configured output period, the outputs received during
the flood against the periods it lasted, the largest and p99 gap between consecutive outputs in
periods (on the output stamps, which are the clock readings the controller decided each output at;
and on this process's receive times), the watchdog latency (last command's stamp -> first output of
the final run of zero outputs; ``command_timeout_s`` plus braking is expected), whether any output was
non-finite or beyond the speed limits, and the controller process's CPU use during the flood (share
of one core). The issue's target: largest stamp gap within 2 periods.

On a shared machine the gaps also measure everyone else's load: ``--reference`` runs the same
measurement without a flood (0 Hz) before each flooded run, so the two can be compared.

    make build
    bash scripts/with_env.sh python benchmarks/bench_controller_flood.py --runs 3 --reference [--seconds 10]

To measure other code, run this file with that checkout's install space sourced (its ``with_env.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import threading
import time

import numpy as np

MAX_LINEAR_M_S = 0.1
MAX_ANGULAR_RAD_S = 0.5
COMMAND_TIMEOUT_S = 0.5
FRAME = "panda_link0"
MIXES = ("mixed", "finite", "huge", "nonfinite")


def _flood_values(mix: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` 6-D twists: finite ones beyond the limits, and (per ``mix``) NaN, +-inf, +-1e308."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.3, 0.3, size=(count, 6))
    kinds = {
        "finite": np.zeros(count, dtype=int),
        "huge": np.full(count, 3),
        "nonfinite": rng.integers(1, 3, size=count),
        # 70% finite, 10% NaN, 10% +-inf, 10% +-1e308
        "mixed": rng.choice(4, size=count, p=[0.7, 0.1, 0.1, 0.1]),
    }[mix]
    axes = rng.integers(0, 6, size=count)
    signs = rng.choice([-1.0, 1.0], size=count)
    rows = np.arange(count)
    for kind, value in ((1, math.nan), (2, math.inf), (3, 1e308)):
        chosen = kinds == kind
        values[rows[chosen], axes[chosen]] = signs[chosen] * value
    return values


# ----------------------------------------------------------------------------------------------------
# The flood: a separate process (its own interpreter lock, its own DDS participant).


def _run_flood(args: argparse.Namespace) -> int:
    import rclpy
    from geometry_msgs.msg import TwistStamped

    from vla_ros.nodes.common import COMMAND_QOS

    rclpy.init()
    node = rclpy.create_node("flood_policy")
    pub = node.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({"ready": pub.get_subscription_count() > 0}), flush=True)
    sys.stdin.readline()  # "go"

    # (time offset, twist) of every command; --rate-hz 0 is the no-flood reference: silence, then the
    # tail at a policy's usual rate.
    flood_n = round(args.seconds * args.rate_hz)
    tail_hz = args.rate_hz or 50.0
    tail_n = round(args.tail_s * tail_hz)
    values = _flood_values(args.mix, flood_n)
    tail = np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0])
    schedule = [(i / args.rate_hz, values[i]) for i in range(flood_n)]
    schedule += [(args.seconds + i / tail_hz, tail) for i in range(tail_n)]
    msg = TwistStamped()
    msg.header.frame_id = FRAME
    clock = node.get_clock()
    first_stamp = clock.now().nanoseconds * 1e-9
    last_stamp = first_stamp
    start = time.monotonic()
    flood_elapsed = args.seconds
    for i, (offset, v) in enumerate(schedule):
        # Deadlines on the monotonic clock: no drift from sleep overshoot.
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = msg.twist
        t.linear.x, t.linear.y, t.linear.z = float(v[0]), float(v[1]), float(v[2])
        t.angular.x, t.angular.y, t.angular.z = float(v[3]), float(v[4]), float(v[5])
        now = clock.now()
        msg.header.stamp = now.to_msg()
        pub.publish(msg)
        last_stamp = now.nanoseconds * 1e-9
        if i == flood_n - 1:
            flood_elapsed = time.monotonic() - start
    print(
        json.dumps(
            {
                "sent": len(schedule),
                "first_stamp": first_stamp,
                "flood_end_stamp": first_stamp + args.seconds,
                "last_stamp": last_stamp,
                "achieved_hz": flood_n / flood_elapsed,
            }
        ),
        flush=True,
    )
    time.sleep(0.5)  # let the reliable writer deliver the last commands
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ----------------------------------------------------------------------------------------------------
# This process: end-effector pose in, outputs recorded.


class _Recorder:
    def __init__(self, context) -> None:
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from rclpy.node import Node

        from vla_ros.nodes.common import COMMAND_QOS

        self.node = Node("flood_recorder", context=context)
        self._lock = threading.Lock()
        self.rows: list[tuple[float, float, tuple[float, ...]]] = []  # (stamp, received, twist)
        self.node.create_subscription(TwistStamped, "sim_twist_out", self._on_output, 100)
        self.pose_pub = self.node.create_publisher(PoseStamped, "ee_pose", COMMAND_QOS)
        self.node.create_timer(0.02, self._publish_pose)
        self.diagnostics: dict[str, str] = {}
        from diagnostic_msgs.msg import DiagnosticArray

        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _publish_pose(self) -> None:
        from geometry_msgs.msg import PoseStamped

        msg = PoseStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = FRAME
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.5, 0.0, 0.3
        msg.pose.orientation.w = 1.0
        self.pose_pub.publish(msg)

    def _on_output(self, msg) -> None:
        received = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        t, w = msg.twist.linear, msg.twist.angular
        with self._lock:
            self.rows.append((stamp, received, (t.x, t.y, t.z, w.x, w.y, w.z)))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if "controller" in status.name:
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            rows = list(self.rows)
        if not rows:
            return np.empty(0), np.empty(0), np.empty((0, 6))
        stamps, received, twists = zip(*rows, strict=True)
        return np.array(stamps), np.array(received), np.array(twists)


def _gaps_in_periods(times: np.ndarray, period: float) -> tuple[float, float]:
    if times.size < 2:
        return math.inf, math.inf
    gaps = np.diff(np.sort(times)) / period
    return float(gaps.max()), float(np.percentile(gaps, 99))


def _controller_executable() -> str:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = os.path.join(prefix, "lib", "vla_ros", "controller_node")
        if prefix and os.path.isfile(path):
            return path
    raise SystemExit(
        "no lib/vla_ros/controller_node on AMENT_PREFIX_PATH: run `make build`, then run this through "
        "scripts/with_env.sh"
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one_run(args: argparse.Namespace, recorder: _Recorder, rate_hz: float) -> dict:
    env = dict(os.environ)
    controller = subprocess.Popen(
        [
            sys.executable,
            _controller_executable(),
            "--ros-args",
            "--log-level",
            "error",
            "-p",
            "output_mode:=sim",
            "-p",
            f"output_rate_hz:={args.output_rate_hz}",
            "-p",
            f"command_timeout_s:={COMMAND_TIMEOUT_S}",
            "-p",
            f"base_frame_id:={FRAME}",
        ],
        env=env,
    )
    flood = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "flood",
            "--seconds",
            str(args.seconds),
            "--rate-hz",
            str(rate_hz),
            "--tail-s",
            str(args.tail_s),
            "--mix",
            args.mix,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready = json.loads(flood.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise RuntimeError("the flood publisher never saw the controller's subscription")
        deadline = time.monotonic() + 30.0
        while recorder.snapshot()[0].size < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        if recorder.snapshot()[0].size < 50:
            raise RuntimeError("no outputs from the controller within 30 s")
        cpu_start, wall_start = _cpu_seconds(controller.pid), time.monotonic()
        flood.stdin.write("go\n")
        flood.stdin.flush()
        result = json.loads(flood.stdout.readline())
        cpu_share = (_cpu_seconds(controller.pid) - cpu_start) / (time.monotonic() - wall_start)
        time.sleep(COMMAND_TIMEOUT_S + 1.0)  # past the watchdog deadline, plus margin
        flood.wait(timeout=10.0)
    finally:
        for proc in (flood, controller):
            if proc.poll() is None:
                proc.terminate()
        for proc in (flood, controller):
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    stamps, received, twists = recorder.snapshot()
    with recorder._lock:
        recorder.rows.clear()
    period = 1.0 / args.output_rate_hz
    first, flood_end = result["first_stamp"], result["flood_end_stamp"]
    during = (stamps >= first) & (stamps <= flood_end)
    max_gap, p99_gap = _gaps_in_periods(stamps[during], period)
    max_recv_gap, p99_recv_gap = _gaps_in_periods(received[during], period)
    # Watchdog latency: from the last command's stamp to the first output of the final run of zeros.
    after = stamps >= first
    moving = np.any(twists != 0.0, axis=1) & after
    last_moving = stamps[moving].max() if moving.any() else first
    zeros_after = stamps[(stamps > last_moving) & ~np.any(twists != 0.0, axis=1)]
    latency = float(zeros_after.min() - result["last_stamp"]) if zeros_after.size else math.nan
    limits = np.array([MAX_LINEAR_M_S] * 3 + [MAX_ANGULAR_RAD_S] * 3)
    over = bool(np.any(~np.isfinite(twists)) or np.any(np.abs(twists) > limits + 1e-9))
    return {
        "sent": result["sent"],
        "achieved_hz": result["achieved_hz"],
        "commands_received": recorder.diagnostics.get("commands_received", "?"),
        "outputs": int(during.sum()),
        "expected": int(args.seconds / period),
        "max_gap": max_gap,
        "p99_gap": p99_gap,
        "max_recv_gap": max_recv_gap,
        "p99_recv_gap": p99_recv_gap,
        "latency_s": latency,
        "over_limits": over,
        "controller_cpu": cpu_share,
    }


@contextlib.contextmanager
def spinning(context, node):
    """``node`` spun by its own executor in a daemon thread while the block runs (the main thread drives
    the measurement); the executor is shut down after it. Also used by bench_faults.py."""
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.nodes.common import stop_executor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        yield executor
    finally:
        stop.set()
        spinner.join(timeout=2.0)
        stop_executor(executor, timeout_s=1.0)


def measure_once(
    seconds: float = 10.0,
    rate_hz: float = 1000.0,
    mix: str = "mixed",
    output_rate_hz: float = 50.0,
    tail_s: float = 0.3,
    domain_id: int | None = None,
) -> dict:
    """One flooded run with its own rclpy context (on ``domain_id``, which the controller and flood
    processes get too), for other benchmarks (bench_faults.py); the dict of one table row."""
    import rclpy

    saved = os.environ.get("ROS_DOMAIN_ID")
    if domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    recorder = _Recorder(context)
    args = argparse.Namespace(seconds=seconds, output_rate_hz=output_rate_hz, tail_s=tail_s, mix=mix)
    try:
        with spinning(context, recorder.node):
            return _one_run(args, recorder, rate_hz)
    finally:
        recorder.node.destroy_node()
        rclpy.try_shutdown(context=context)
        if saved is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = saved


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="flood duration")
    parser.add_argument(
        "--rate-hz", type=float, default=1000.0, help="incoming command rate; 0: no flood (a reference)"
    )
    parser.add_argument("--output-rate-hz", type=float, default=50.0, help="controller output_rate_hz")
    parser.add_argument("--mix", choices=MIXES, default="mixed", help="what the flood sends")
    parser.add_argument("--tail-s", type=float, default=0.3, help="finite commands after the flood")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="a run without flood before each run")
    parser.add_argument("--role", choices=("bench", "flood"), default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "flood":
        return _run_flood(args)

    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    recorder = _Recorder(context)
    period = 1.0 / args.output_rate_hz
    print(
        f"flood: {args.rate_hz:.0f} Hz of '{args.mix}' twists for {args.seconds:g} s from another process; "
        f"output period {period * 1e3:.1f} ms; gaps in output periods (target: max <= 2)"
    )
    print(
        f"{'run':>3s} {'flood Hz':>8s} {'sent Hz':>7s} {'taken':>6s} {'period ms':>9s} {'outputs':>9s} "
        f"{'max gap':>7s} {'p99 gap':>7s} {'max recv':>8s} {'p99 recv':>8s} {'watchdog s':>10s} "
        f"{'over limits':>11s} {'ctrl CPU':>8s}"
    )
    rates = [0.0, args.rate_hz] if args.reference else [args.rate_hz]
    largest: dict[float, list[float]] = {rate: [] for rate in rates}
    try:
        with spinning(context, recorder.node):
            for run in range(1, args.runs + 1):
                for rate in rates:
                    r = _one_run(args, recorder, rate)
                    largest[rate].append(r["max_gap"])
                    print(
                        f"{run:3d} {rate:8.0f} {r['achieved_hz']:7.0f} {r['commands_received']!s:>6s} "
                        f"{period * 1e3:9.1f} {r['outputs']:>4d}/{r['expected']:<4d} {r['max_gap']:7.2f} "
                        f"{r['p99_gap']:7.2f} {r['max_recv_gap']:8.2f} {r['p99_recv_gap']:8.2f} "
                        f"{r['latency_s']:10.3f} {'YES' if r['over_limits'] else 'no':>11s} "
                        f"{r['controller_cpu']:8.0%}",
                        flush=True,
                    )
            for rate, gaps in largest.items():
                print(
                    f"{rate:.0f} Hz: largest gap over {len(gaps)} runs: median {np.median(gaps):.2f}, "
                    f"max {np.max(gaps):.2f} periods"
                )
    finally:
        recorder.node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
