"""The controller core: the one place that decides what twist the arm gets, every output period.

The ROS node around it only converts messages and calls these methods; everything that decides
safety happens here, in this order, on every :meth:`Controller.step`:

1. e-stop latched -> zero twist, immediately (the one deliberate exception to the acceleration
   limit; the filter restarts from zero afterwards). Every trip gives at least one zero output,
   even if it is reset before the next step;
2. clock sanity: time running backwards past the last command drops that command;
3. watchdog: the last accepted command is followed until its deadline
   (``stamp + command_timeout_s``), braking so that the output is zero from the deadline on;
4. end-effector pose: older than ``ee_pose_timeout_s`` (or never received) -> stop;
5. the safety filter (NaN/inf rejection, speed, workspace, acceleration).

Incoming commands are checked when they arrive (:meth:`Controller.on_command`): stamps older than
``max_command_age_s`` (or further in the future, a clock mismatch) are refused and do not feed the
watchdog; non-finite commands are a stop request.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from vla_ros.control.estop import EStop
from vla_ros.control.limits import SafetyLimits
from vla_ros.control.safety_filter import TWIST_DIM, FilterResult, Flag, SafetyFilter, as_twist
from vla_ros.control.watchdog import Watchdog


class CommandVerdict(str, Enum):
    """What :meth:`Controller.on_command` did with a command."""

    ACCEPTED = "accepted"
    REJECTED_NON_FINITE = "rejected_non_finite"  # taken as a stop request
    REJECTED_STALE = "rejected_stale"
    REJECTED_FUTURE = "rejected_future_stamp"
    REJECTED_OUT_OF_ORDER = "rejected_out_of_order"
    IGNORED_ESTOP = "ignored_estop_latched"

    def __str__(self) -> str:
        return self.value


ACCEPTED = CommandVerdict.ACCEPTED
REJECTED_NON_FINITE = CommandVerdict.REJECTED_NON_FINITE
REJECTED_STALE = CommandVerdict.REJECTED_STALE
REJECTED_FUTURE = CommandVerdict.REJECTED_FUTURE
REJECTED_OUT_OF_ORDER = CommandVerdict.REJECTED_OUT_OF_ORDER
IGNORED_ESTOP = CommandVerdict.IGNORED_ESTOP


@dataclass(frozen=True)
class ControllerStatus:
    """A snapshot for diagnostics: what the controller is doing and how often it intervened."""

    estop_latched: bool
    estop_engaged: bool
    estop_trips: int
    commands_received: int
    commands_accepted: int
    commands_rejected_non_finite: int
    commands_rejected_stale: int
    commands_rejected_future: int
    commands_rejected_out_of_order: int
    commands_ignored_estop: int
    outputs: int
    output_flag_counts: dict[str, int] = field(default_factory=dict)
    last_reason: str | None = None
    time_since_last_command_s: float | None = None
    ee_pose_age_s: float | None = None
    watchdog_expired: bool = True
    last_output: tuple[float, ...] = (0.0,) * TWIST_DIM
    last_flags: tuple[str, ...] = ()


class Controller:
    """Commands, end-effector poses and e-stop signals in; one safe twist per :meth:`step` out."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.filter = SafetyFilter(limits)
        self.watchdog = Watchdog(limits.command_timeout_s)
        self.estop = EStop()
        self._command = np.zeros(TWIST_DIM)
        self._command_stamp_s: float | None = None
        self._ee_position: np.ndarray | None = None
        self._ee_time_s: float | None = None
        self._counts: Counter[str] = Counter()
        self._flag_counts: Counter[str] = Counter()
        self._outputs = 0
        self._last_reason: str | None = None
        self._last_result: FilterResult | None = None
        # Set when the e-stop latches, cleared by the zero output it causes: even a stop that is
        # reset before the next step still sends one zero twist.
        self._stop_pending = False

    # ------------------------------------------------------------------ inputs

    def on_command(self, twist: np.ndarray, stamp_s: float, now_s: float) -> CommandVerdict:
        """Check and store a commanded twist ``[vx, vy, vz, wx, wy, wz]`` (base frame, m/s, rad/s)."""
        twist = as_twist(twist)
        self._counts["received"] += 1
        if self.estop.latched:
            return self._refuse(IGNORED_ESTOP, "command ignored: e-stop latched (reset it first)")
        stamp_s, now_s = float(stamp_s), float(now_s)
        if not (math.isfinite(stamp_s) and math.isfinite(now_s)):
            return self._refuse(
                REJECTED_STALE, f"command refused: stamp {stamp_s} or time {now_s} not finite"
            )
        age_s = now_s - stamp_s
        max_age = self.limits.max_command_age_s
        if age_s > max_age:
            return self._refuse(
                REJECTED_STALE, f"command refused: stamp is {age_s:.3f} s old > max_command_age_s {max_age}"
            )
        if age_s < -max_age:
            return self._refuse(
                REJECTED_FUTURE,
                f"command refused: stamp is {-age_s:.3f} s in the future (> max_command_age_s {max_age}); "
                "are the publisher's and controller's clocks synchronised?",
            )
        if self._command_stamp_s is not None and stamp_s < self._command_stamp_s:
            return self._refuse(REJECTED_OUT_OF_ORDER, "command refused: older than the current command")
        self._command_stamp_s = stamp_s
        self.watchdog.feed(stamp_s, now_s)
        if not np.all(np.isfinite(twist)):
            # A broken policy output must stop the arm, not let the previous command run on.
            self._command = np.zeros(TWIST_DIM)
            return self._refuse(REJECTED_NON_FINITE, "command has NaN/inf: treated as a stop request")
        self._command = twist
        self._counts["accepted"] += 1
        return ACCEPTED

    def on_ee_pose(self, position_m: np.ndarray, now_s: float) -> bool:
        """Record the end effector's position in the base frame; False if it was not usable."""
        position = np.asarray(position_m, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)) or not math.isfinite(now_s):
            self._last_reason = "end-effector position refused: not 3 finite numbers"
            return False
        self._ee_position = position.copy()
        self._ee_time_s = float(now_s)
        return True

    def on_estop(self, engaged: bool) -> None:
        """Feed the e-stop signal; True latches it, False alone never clears it."""
        was_latched = self.estop.latched
        self.estop.signal(engaged)
        if self.estop.latched and not was_latched:
            self._stop_pending = True
            self._last_reason = "e-stop latched"

    def reset_estop(self) -> bool:
        """Clear the e-stop latch (refused while the e-stop is still engaged).

        The command that was active before the stop is forgotten: the arm moves again only on a
        command that arrives after the reset.
        """
        if not self.estop.reset():
            self._last_reason = "e-stop reset refused: the e-stop signal is still engaged"
            return False
        self._drop_command()
        self._last_reason = "e-stop reset"
        return True

    # ------------------------------------------------------------------ output

    def step(self, now_s: float) -> FilterResult:
        """The twist to send at ``now_s``; call once per output period."""
        now_s = float(now_s)
        if self.estop.latched or self._stop_pending:
            self._stop_pending = False
            self.filter.reset(now_s)
            result = FilterResult(twist=np.zeros(TWIST_DIM), time_s=now_s, flags=(Flag.ESTOP_LATCHED,))
            return self._record(result)

        extra: list[Flag] = []
        received = self.watchdog.received_s
        if math.isfinite(now_s) and received is not None and now_s < received:
            # The clock jumped back: the last command's age is meaningless, so it no longer counts.
            self._drop_command()
            extra.append(Flag.TIME_WENT_BACKWARDS)
            self._last_reason = "clock went backwards: last command dropped"

        if not self.watchdog.has_command:
            target = np.zeros(TWIST_DIM)
            extra.append(Flag.NO_COMMAND)
        elif self.watchdog.expired(now_s):
            target = np.zeros(TWIST_DIM)
            extra.append(Flag.COMMAND_TIMEOUT)
        else:
            target = self._command

        result = self.filter.apply(target, now_s, self.fresh_ee_position(now_s), self.watchdog.deadline_s)
        return self._record(result.with_flags(*extra))

    def status(self, now_s: float) -> ControllerStatus:
        """Diagnostics snapshot at ``now_s``."""
        last = self._last_result
        ee_age = None if self._ee_time_s is None else float(now_s) - self._ee_time_s
        return ControllerStatus(
            estop_latched=self.estop.latched,
            estop_engaged=self.estop.engaged,
            estop_trips=self.estop.trip_count,
            commands_received=self._counts["received"],
            commands_accepted=self._counts["accepted"],
            commands_rejected_non_finite=self._counts[REJECTED_NON_FINITE],
            commands_rejected_stale=self._counts[REJECTED_STALE],
            commands_rejected_future=self._counts[REJECTED_FUTURE],
            commands_rejected_out_of_order=self._counts[REJECTED_OUT_OF_ORDER],
            commands_ignored_estop=self._counts[IGNORED_ESTOP],
            outputs=self._outputs,
            output_flag_counts=dict(self._flag_counts),
            last_reason=self._last_reason,
            time_since_last_command_s=self.watchdog.time_since_command_s(now_s),
            ee_pose_age_s=ee_age,
            watchdog_expired=self.watchdog.expired(now_s),
            last_output=tuple(float(v) for v in last.twist) if last else (0.0,) * TWIST_DIM,
            last_flags=tuple(str(f) for f in last.flags) if last else (),
        )

    # ------------------------------------------------------------------ internals

    def fresh_ee_position(self, now_s: float) -> np.ndarray | None:
        """The end-effector position the workspace check uses at ``now_s``: None if too old or unknown."""
        if self._ee_position is None or self._ee_time_s is None or not math.isfinite(now_s):
            return None
        age = now_s - self._ee_time_s
        if age < 0.0 or age > self.limits.ee_pose_timeout_s:
            return None
        return self._ee_position

    def _drop_command(self) -> None:
        self._command = np.zeros(TWIST_DIM)
        self._command_stamp_s = None
        self.watchdog.clear()

    def _refuse(self, verdict: CommandVerdict, reason: str) -> CommandVerdict:
        self._counts[verdict] += 1
        self._last_reason = reason
        return verdict

    def _record(self, result: FilterResult) -> FilterResult:
        self._outputs += 1
        self._flag_counts.update(str(f) for f in result.flags)
        self._last_result = result
        return result
