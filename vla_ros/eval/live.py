"""Live replay reports: what the running nodes did with a bag played at recorded timing.

Two replays (the ROS side is :mod:`vla_ros.nodes.replay`; this module is its ROS-free core):

- **live**: the bag's camera frames, instruction and end-effector poses are published at recorded
  timing (times a rate factor) while the real policy and controller nodes run. The report answers
  "does the policy keep up on this machine?": how many frames reached the policy, how many it acted
  on, dropped (a newer frame replaced them) or refused (too old when inference could start), the
  end-to-end latency from the camera stamp to the twist, and the achieved step rate.
- **actions-only**: the bag's recorded actions are sent, as the policy would send them, straight into
  the controller. The report answers "what does the safety path do to these commands?": per command,
  the controller's settled output (its last output before the next command) against the command,
  and the controller's own counts of rejections and safety flags.

Header stamps are replaced by the replay time when a message is published (see
:class:`ReplayOptions`), so stamps here are replay-clock nanoseconds; the original bag stamps are
kept next to them in :class:`PublishedFrame` and :class:`CommandRecord`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# ActionStep.image_stamp goes through float seconds inside the policy node: up to ~0.3 us of rounding.
_STAMP_MATCH_TOLERANCE_NS = 100_000
LIVE_REPORT_NAME = "live_replay.json"
ACTIONS_REPORT_NAME = "actions_replay.json"


class ReplayError(RuntimeError):
    """A replay cannot run as asked (nodes did not start, topics never connected, ...)."""


# ----------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class ReplayOptions:
    """How a bag is replayed.

    ``rate`` scales the recorded timing (2.0 plays twice as fast); ``passes`` is how often the bag is
    played (``None``: until interrupted). Every header stamp is replaced by the time of publication,
    because the nodes check ages against their clock: the policy refuses frames older than
    ``image_max_age_s`` and the controller commands older than ``command_max_age_s``, and a bag's
    stamps are hours or days old. The original stamps stay in the report.

    ``wrist_camera_topic`` (an Image topic of the bag, e.g. ``/camera/wrist/image_raw``) is played onto
    the policy's ``wrist/image_raw``, for a two-view checkpoint. Frames recorded with one stamp are
    published with one stamp, so the node, which pairs a scene frame with the wrist frame nearest in
    time, gives each scene frame its own wrist frame, not the previous one.

    ``ee_pose_topic`` (a PoseStamped topic of the bag; ``None`` or absent from the bag: the fixed pose
    ``fixed_ee_pose_m``) feeds the controller's workspace check. The newest pose is re-published,
    freshly stamped, at ``ee_pose_hold_hz`` so that sparse pose topics and slowed-down replays do not
    trip the controller's pose timeout; the arm does not move during a replay, the pose only tells the
    controller where the recording was.

    In actions-only replay a recorded action becomes the twist ``delta / control_period_s`` (the same
    conversion as the policy node's), so at ``rate`` != 1 the commanded velocities stay those of the
    recording while each command lasts ``1 / rate`` times longer.
    """

    rate: float = 1.0
    passes: int | None = 1
    namespace: str = "replay"
    camera_topic: str = "/camera/image_raw"
    wrist_camera_topic: str | None = None
    instruction_topic: str | None = "/vla/instruction"
    instruction: str | None = None
    ee_pose_topic: str | None = "/ee_pose"
    fixed_ee_pose_m: tuple[float, float, float] = (0.4, 0.0, 0.3)
    ee_pose_hold_hz: float = 20.0
    action_topic: str = "/vla/action_step"
    control_period_s: float = 0.2
    base_frame_id: str = "panda_link0"
    discovery_timeout_s: float = 10.0
    settle_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0.0):
            raise ValueError(f"rate must be a positive number (1.0 = recorded timing), got {self.rate}")
        if self.passes is not None and self.passes < 1:
            raise ValueError(f"passes must be >= 1 (or None to loop until interrupted), got {self.passes}")
        if not (math.isfinite(self.control_period_s) and self.control_period_s > 0.0):
            raise ValueError(f"control_period_s must be > 0 seconds, got {self.control_period_s}")
        if not self.ee_pose_hold_hz > 0.0:
            raise ValueError(f"ee_pose_hold_hz must be > 0, got {self.ee_pose_hold_hz}")


# ----------------------------------------------------------------------------------------------------------
# What the replay observed (plain records, filled by the ROS side)


@dataclass(frozen=True)
class PublishedFrame:
    """A camera frame as the player published it."""

    pass_index: int
    index: int  # frame number within the pass
    bag_time_ns: int  # receive time recorded in the bag
    original_stamp_ns: int  # header stamp recorded in the bag
    replay_stamp_ns: int  # header stamp as published


@dataclass(frozen=True)
class StepRecord:
    """An ActionStep the policy published; ``stamp_ns`` is also the stamp of its twist."""

    step: int
    image_stamp_ns: int
    stamp_ns: int
    received_ns: int
    inference_time_s: float
    action: tuple[float, ...]


@dataclass(frozen=True)
class TwistRecord:
    """A TwistStamped seen by the recorder: header stamp, receive time, ``[vx vy vz wx wy wz]``."""

    stamp_ns: int
    received_ns: int
    twist: tuple[float, ...]


@dataclass(frozen=True)
class CommandRecord:
    """A recorded action sent to the controller in actions-only replay."""

    pass_index: int
    index: int  # ActionStep number within the pass
    bag_time_ns: int
    stamp_ns: int  # header stamp of the published twist
    action: tuple[float, ...]
    twist: tuple[float, ...]
    gripper_position: float | None  # None: not sent (non-finite gripper value)


@dataclass
class PolicyCounters:
    """The policy node's frame counters, as its /diagnostics report them."""

    frames_received: int = 0
    frames_dropped: int = 0
    frames_refused_stale: int = 0
    errors: int = 0
    steps: int = 0
    rate_hz: float = 0.0
    inference_latency_p50_s: float = float("nan")
    inference_latency_p95_s: float = float("nan")

    @classmethod
    def from_diagnostic(cls, values: Mapping[str, str]) -> PolicyCounters:
        return cls(
            frames_received=int(values.get("frames_received", 0)),
            frames_dropped=int(values.get("frames_dropped", 0)),
            frames_refused_stale=int(values.get("frames_refused_stale", 0)),
            errors=int(values.get("errors", 0)),
            steps=int(values.get("steps", 0)),
            rate_hz=float(values.get("rate_hz", 0.0)),
            inference_latency_p50_s=float(values.get("inference_latency_p50_s", "nan")),
            inference_latency_p95_s=float(values.get("inference_latency_p95_s", "nan")),
        )

    def minus(self, before: PolicyCounters) -> PolicyCounters:
        """Counts accumulated since ``before`` (rates and latencies are kept from ``self``)."""
        return PolicyCounters(
            frames_received=self.frames_received - before.frames_received,
            frames_dropped=self.frames_dropped - before.frames_dropped,
            frames_refused_stale=self.frames_refused_stale - before.frames_refused_stale,
            errors=self.errors - before.errors,
            steps=self.steps - before.steps,
            rate_hz=self.rate_hz,
            inference_latency_p50_s=self.inference_latency_p50_s,
            inference_latency_p95_s=self.inference_latency_p95_s,
        )

    @property
    def unaccounted(self) -> int:
        """Frames received but neither acted on, dropped, refused nor failed (0 once inference is idle)."""
        return (
            self.frames_received - self.steps - self.frames_dropped - self.frames_refused_stale - self.errors
        )


_CONTROLLER_COUNT_KEYS = (
    "commands_received",
    "commands_accepted",
    "commands_rejected_non_finite",
    "commands_rejected_stale",
    "commands_rejected_future",
    "commands_rejected_out_of_order",
    "commands_ignored_estop",
    "outputs",
)


@dataclass
class ControllerCounters:
    """The controller node's command counts and safety-flag counts, from its /diagnostics."""

    counts: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_diagnostic(cls, values: Mapping[str, str]) -> ControllerCounters:
        counts = {k: int(values[k]) for k in _CONTROLLER_COUNT_KEYS if k in values}
        flags: dict[str, int] = {}
        for item in values.get("output_flag_counts", "").split(","):
            if "=" in item:
                name, count = item.split("=", 1)
                flags[name.strip()] = int(count)
        return cls(counts, flags)

    def minus(self, before: ControllerCounters) -> ControllerCounters:
        counts = {k: v - before.counts.get(k, 0) for k, v in self.counts.items()}
        flags = {k: v - before.flags.get(k, 0) for k, v in self.flags.items()}
        return ControllerCounters(counts, {k: v for k, v in flags.items() if v})


# ----------------------------------------------------------------------------------------------------------
# Statistics helpers


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def _rate_hz(stamps_ns: Sequence[int]) -> float | None:
    """Events per second over the span from the first to the last event."""
    if len(stamps_ns) < 2:
        return None
    span_s = (max(stamps_ns) - min(stamps_ns)) * 1e-9
    return (len(stamps_ns) - 1) / span_s if span_s > 0 else None


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _match_frame(frames_by_stamp: Sequence[PublishedFrame], stamps: np.ndarray, stamp_ns: int):
    if not len(frames_by_stamp):
        return None
    i = int(np.searchsorted(stamps, stamp_ns))
    best = None
    for j in (i - 1, i):
        if 0 <= j < len(frames_by_stamp):
            d = abs(int(stamps[j]) - stamp_ns)
            if d <= _STAMP_MATCH_TOLERANCE_NS and (best is None or d < best[0]):
                best = (d, frames_by_stamp[j])
    return None if best is None else best[1]


# ----------------------------------------------------------------------------------------------------------
# Live replay


@dataclass
class LiveReplayReport:
    """Everything the live replay measured; ``to_dict`` is what goes into live_replay.json."""

    meta: dict[str, Any]
    frames_published: int
    policy: PolicyCounters
    steps_recorded: int
    twists_recorded: int
    acted_bag_frames: list[dict[str, int]]
    latency_image_to_twist_s: dict[str, float | None]
    latency_image_to_twist_received_s: dict[str, float | None]
    inference_time_s: dict[str, float | None]
    camera_rate_hz: float | None
    policy_rate_hz: float | None
    controller: ControllerCounters
    controller_outputs: int
    controller_nonzero_outputs: int

    @property
    def frames_delivered(self) -> int:
        return self.policy.frames_received

    @property
    def frames_acted(self) -> int:
        return self.policy.steps

    @property
    def frames_dropped(self) -> int:
        return self.policy.frames_dropped

    @property
    def frames_refused(self) -> int:
        return self.policy.frames_refused_stale

    @property
    def consistent(self) -> bool:
        """Every delivered frame is accounted for, and every step reached the recorder."""
        return self.policy.unaccounted == 0 and self.steps_recorded == self.policy.steps

    def to_dict(self) -> dict[str, Any]:
        p = self.policy
        return {
            "mode": "live",
            **self.meta,
            "frames": {
                "published": self.frames_published,
                "delivered": p.frames_received,
                "acted": p.steps,
                "dropped": p.frames_dropped,
                "refused_stale": p.frames_refused_stale,
                "failed": p.errors,
                "unaccounted": p.unaccounted,
                "lost_in_transport": self.frames_published - p.frames_received,
                "consistent": self.consistent,
            },
            "steps_recorded": self.steps_recorded,
            "twists_recorded": self.twists_recorded,
            "latency_s": {
                "image_stamp_to_twist_stamp": self.latency_image_to_twist_s,
                "image_stamp_to_twist_received": self.latency_image_to_twist_received_s,
                "inference": self.inference_time_s,
            },
            "rate_hz": {
                "camera_published": self.camera_rate_hz,
                "policy_steps": self.policy_rate_hz,
                "policy_diagnostics": _finite_or_none(p.rate_hz),
            },
            "controller": {
                "outputs_recorded": self.controller_outputs,
                "nonzero_outputs_recorded": self.controller_nonzero_outputs,
                **self.controller.counts,
                "flags": self.controller.flags,
            },
            "acted_bag_frames": self.acted_bag_frames,
        }

    def summary(self) -> str:
        p = self.policy
        lat = self.latency_image_to_twist_s

        def ms(x: float | None) -> str:
            return "n/a" if x is None else f"{x * 1e3:.1f} ms"

        def hz(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f} Hz"

        counts = self.controller.counts
        return "\n".join(
            [
                f"frames: {self.frames_published} published, {p.frames_received} delivered, "
                f"{p.steps} acted on, {p.frames_dropped} dropped, {p.frames_refused_stale} refused (stale), "
                f"{p.errors} failed" + ("" if self.consistent else f", {p.unaccounted} unaccounted"),
                f"latency camera stamp -> twist: p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}, "
                f"max {ms(lat['max'])} (inference p50 {ms(self.inference_time_s['p50'])})",
                f"rate: camera {hz(self.camera_rate_hz)}, policy {hz(self.policy_rate_hz)}",
                f"controller: {self.controller_outputs} outputs ({self.controller_nonzero_outputs} moving), "
                f"commands {counts.get('commands_accepted', 0)} accepted of "
                f"{counts.get('commands_received', 0)}, flags {self.controller.flags or '{}'}",
            ]
        )


def summarize_live(
    frames: Sequence[PublishedFrame],
    steps: Sequence[StepRecord],
    twists: Sequence[TwistRecord],
    controller_outputs: Sequence[TwistRecord],
    policy: PolicyCounters,
    controller: ControllerCounters,
    meta: Mapping[str, Any] | None = None,
) -> LiveReplayReport:
    """Build the live report from what was published, recorded and counted during one replay.

    ``policy`` and ``controller`` are the counts accumulated during the replay (after minus before).
    """
    by_stamp = sorted(frames, key=lambda f: f.replay_stamp_ns)
    stamps = np.asarray([f.replay_stamp_ns for f in by_stamp], dtype=np.int64)
    twist_received = {t.stamp_ns: t.received_ns for t in twists}
    lat_stamp, lat_received, acted = [], [], []
    for s in sorted(steps, key=lambda s: s.stamp_ns):
        lat_stamp.append((s.stamp_ns - s.image_stamp_ns) * 1e-9)
        if s.stamp_ns in twist_received:
            lat_received.append((twist_received[s.stamp_ns] - s.image_stamp_ns) * 1e-9)
        frame = _match_frame(by_stamp, stamps, s.image_stamp_ns)
        acted.append(
            {
                "step": s.step,
                "pass": -1 if frame is None else frame.pass_index,
                "frame_index": -1 if frame is None else frame.index,
                "bag_stamp_ns": -1 if frame is None else frame.original_stamp_ns,
            }
        )
    moving = sum(1 for o in controller_outputs if any(abs(v) > 0.0 for v in o.twist))
    return LiveReplayReport(
        meta=dict(meta or {}),
        frames_published=len(frames),
        policy=policy,
        steps_recorded=len(steps),
        twists_recorded=len(twists),
        acted_bag_frames=acted,
        latency_image_to_twist_s=_percentiles(lat_stamp),
        latency_image_to_twist_received_s=_percentiles(lat_received),
        inference_time_s=_percentiles([s.inference_time_s for s in steps]),
        camera_rate_hz=_rate_hz([f.replay_stamp_ns for f in frames]),
        policy_rate_hz=_rate_hz([s.stamp_ns for s in steps]),
        controller=controller,
        controller_outputs=len(controller_outputs),
        controller_nonzero_outputs=moving,
    )


# ----------------------------------------------------------------------------------------------------------
# Actions-only replay


@dataclass(frozen=True)
class CommandOutcome:
    """One command and what the controller settled on while it was the newest command."""

    pass_index: int
    index: int
    command: tuple[float, ...]
    settled_output: tuple[float, ...] | None  # None: no controller output in the window
    difference: tuple[float, ...] | None  # settled - command (None for non-finite commands)
    max_abs_difference: float | None
    changed: bool
    non_finite: bool


@dataclass
class ActionsReplayReport:
    meta: dict[str, Any]
    outcomes: list[CommandOutcome]
    controller: ControllerCounters
    controller_outputs: int
    max_abs_difference_any_output: float | None
    grippers_sent: int
    grippers_forwarded: int
    grippers_forwarded_equal: bool
    tolerance: float

    @property
    def commands_changed(self) -> list[CommandOutcome]:
        return [o for o in self.outcomes if o.changed]

    @property
    def max_abs_difference_per_axis(self) -> list[float] | None:
        diffs = [o.difference for o in self.outcomes if o.difference is not None]
        if not diffs:
            return None
        return [float(v) for v in np.max(np.abs(np.asarray(diffs)), axis=0)]

    @property
    def max_abs_difference(self) -> float | None:
        per_axis = self.max_abs_difference_per_axis
        return None if per_axis is None else max(per_axis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "actions_only",
            **self.meta,
            "commands": len(self.outcomes),
            "commands_changed_by_safety": len(self.commands_changed),
            "commands_non_finite": sum(o.non_finite for o in self.outcomes),
            "commands_without_output": sum(o.settled_output is None for o in self.outcomes),
            "tolerance": self.tolerance,
            "max_abs_difference_settled": self.max_abs_difference,
            "max_abs_difference_settled_per_axis": self.max_abs_difference_per_axis,
            "max_abs_difference_any_output": self.max_abs_difference_any_output,
            "controller": {
                "outputs_recorded": self.controller_outputs,
                **self.controller.counts,
                "flags": self.controller.flags,
            },
            "gripper": {
                "sent": self.grippers_sent,
                "forwarded": self.grippers_forwarded,
                "forwarded_equal": self.grippers_forwarded_equal,
            },
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    def summary(self) -> str:
        diff = self.max_abs_difference
        counts = self.controller.counts
        rejected = {k: v for k, v in counts.items() if k.startswith("commands_rejected") and v}
        return "\n".join(
            [
                f"commands: {len(self.outcomes)} sent, {len(self.commands_changed)} changed by the safety "
                f"path (settled output differs by more than {self.tolerance:g}), "
                f"{sum(o.non_finite for o in self.outcomes)} non-finite",
                "max |settled output - command|: "
                + ("n/a" if diff is None else f"{diff:.4g} (per axis {self.max_abs_difference_per_axis})"),
                f"controller: {self.controller_outputs} outputs, rejections {rejected or '{}'}, "
                f"flags {self.controller.flags or '{}'}",
                f"gripper: {self.grippers_forwarded} of {self.grippers_sent} forwarded"
                + ("" if self.grippers_forwarded_equal else " (some differ from what was sent)"),
            ]
        )


def summarize_actions(
    commands: Sequence[CommandRecord],
    outputs: Sequence[TwistRecord],
    controller: ControllerCounters,
    *,
    grippers_forwarded: Sequence[float] = (),
    last_window_s: float,
    tolerance: float = 1e-6,
    meta: Mapping[str, Any] | None = None,
) -> ActionsReplayReport:
    """Compare each command with the controller's last output stamped before the next command.

    Output stamps and command stamps come from one clock, so an output stamped before command k+1
    was published was computed from command k or earlier: the last one in command k's window is what
    the controller settled on for it (after its acceleration ramp). The last command's window is
    ``last_window_s`` long. A non-finite command is expected to stop the arm and is not compared.
    """
    cmds = sorted(commands, key=lambda c: c.stamp_ns)
    outs = sorted(outputs, key=lambda o: o.stamp_ns)
    out_stamps = np.asarray([o.stamp_ns for o in outs], dtype=np.int64)
    outcomes: list[CommandOutcome] = []
    any_diff: list[float] = []
    for k, cmd in enumerate(cmds):
        end = cmds[k + 1].stamp_ns if k + 1 < len(cmds) else cmd.stamp_ns + round(last_window_s * 1e9)
        lo, hi = np.searchsorted(out_stamps, [cmd.stamp_ns, end], side="left")
        command = np.asarray(cmd.twist, dtype=np.float64)
        non_finite = not bool(np.all(np.isfinite(command)))
        settled = outs[hi - 1].twist if hi > lo else None
        difference = None
        if settled is not None and not non_finite:
            diff = np.asarray(settled) - command
            difference = tuple(float(v) for v in diff)
            any_diff.extend(float(np.max(np.abs(np.asarray(o.twist) - command))) for o in outs[lo:hi])
        max_abs = None if difference is None else float(np.max(np.abs(difference)))
        outcomes.append(
            CommandOutcome(
                pass_index=cmd.pass_index,
                index=cmd.index,
                command=tuple(float(v) for v in command),
                settled_output=None if settled is None else tuple(float(v) for v in settled),
                difference=difference,
                max_abs_difference=max_abs,
                changed=non_finite or (max_abs is not None and max_abs > tolerance),
                non_finite=non_finite,
            )
        )
    sent = [c.gripper_position for c in cmds if c.gripper_position is not None]
    forwarded = list(grippers_forwarded)
    return ActionsReplayReport(
        meta=dict(meta or {}),
        outcomes=outcomes,
        controller=controller,
        controller_outputs=len(outs),
        max_abs_difference_any_output=max(any_diff) if any_diff else None,
        grippers_sent=len(sent),
        grippers_forwarded=len(forwarded),
        grippers_forwarded_equal=len(sent) == len(forwarded)
        and all(abs(a - b) <= tolerance for a, b in zip(sent, forwarded, strict=True)),
        tolerance=tolerance,
    )


def write_report_json(report: LiveReplayReport | ActionsReplayReport, out_dir: str | Path) -> Path:
    """Write the report as JSON into ``out_dir`` (created); written to a temporary file, then renamed,
    so an interrupted run never leaves half a report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = LIVE_REPORT_NAME if isinstance(report, LiveReplayReport) else ACTIONS_REPORT_NAME
    path = out / name
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(_finite(report.to_dict()), indent=2, allow_nan=False, default=_json_default)
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _finite(value: Any) -> Any:
    """NaN and inf (a rejected command) become null: JSON has no such numbers."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def ros2_bag_play_command(
    bag: str,
    remaps: Mapping[str, str],
    *,
    rate: float = 1.0,
    loop: bool = False,
    clock_hz: float = 100.0,
) -> list[str]:
    """The ``ros2 bag play`` command line (Jazzy) that plays only ``remaps``' bag topics onto their targets.

    ``--clock`` publishes the bag's time on /clock: nodes started with ``use_sim_time`` then see the
    recorded stamps as fresh, which is how a full ROS install replays without restamping.
    """
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    topics = [t for t in remaps if t]
    if not topics:
        raise ValueError("no bag topics to play: give at least the camera topic")
    cmd = ["ros2", "bag", "play", str(bag), "--rate", f"{float(rate):g}", "--clock", f"{float(clock_hz):g}"]
    cmd += ["--topics", *topics]
    cmd += ["--remap", *(f"{src}:={dst}" for src, dst in remaps.items() if src and src != dst)]
    if loop:
        cmd.append("--loop")
    return cmd
