"""The command watchdog: motion is allowed only while commands keep arriving.

A policy that crashes, hangs or loses its network must not leave the arm moving on its last
command. The watchdog turns "no fresh command for ``command_timeout_s``" into a stop deadline that
the safety filter honours while braking within the acceleration limits (see
:class:`~vla_ros.control.safety_filter.SafetyFilter`): the output is zero at every step from
``stamp + command_timeout_s`` on, so the arm is commanded to zero at most one output period after
the timeout.
"""

from __future__ import annotations

import math

from vla_ros.control.limits import _positive_seconds


class Watchdog:
    """Tracks the newest accepted command and when motion must have stopped without a new one.

    The deadline counts from the command's stamp (capped at its arrival time, so a clock ahead of
    ours cannot extend it): the time a command spent in transport is part of its timeout, as in
    MoveIt Servo.
    """

    def __init__(self, command_timeout_s: float) -> None:
        self.command_timeout_s = _positive_seconds("command_timeout_s", command_timeout_s)
        self._command_time_s: float | None = None
        self._received_s: float | None = None

    def feed(self, stamp_s: float, now_s: float) -> None:
        """Record a fresh command stamped ``stamp_s`` that arrived at ``now_s``."""
        if not (math.isfinite(stamp_s) and math.isfinite(now_s)):
            raise ValueError(
                "a command's stamp and arrival time must be finite; refuse such commands earlier"
            )
        self._command_time_s = min(float(stamp_s), float(now_s))
        self._received_s = float(now_s)

    def clear(self) -> None:
        """Forget the last command (after an e-stop reset or a clock jump): nothing is fresh."""
        self._command_time_s = None
        self._received_s = None

    @property
    def has_command(self) -> bool:
        return self._command_time_s is not None

    @property
    def received_s(self) -> float | None:
        return self._received_s

    @property
    def deadline_s(self) -> float | None:
        """When the output must be zero unless a fresher command arrives; None if none ever came."""
        if self._command_time_s is None:
            return None
        return self._command_time_s + self.command_timeout_s

    def expired(self, now_s: float) -> bool:
        """True when no command is fresh at ``now_s`` (including when none ever arrived)."""
        deadline = self.deadline_s
        if deadline is None or not math.isfinite(now_s):
            return True
        return now_s >= deadline

    def time_since_command_s(self, now_s: float) -> float | None:
        if self._command_time_s is None:
            return None
        return float(now_s) - self._command_time_s
