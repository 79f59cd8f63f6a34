"""Pairs each scene camera frame with the wrist camera frame nearest to it in time (no ROS here).

A two-view policy (config.json ``num_images: 2``) must get both views of one moment. The two cameras
arrive on two topics in no fixed order, so a scene frame pairs at once with a wrist frame stamped at
or after it; otherwise it waits for the next wrist frame (at most until the next scene frame
supersedes it) and takes whichever of the two wrist frames is nearer. A superseded scene frame is
handed on with the wrist frame that was newest when it came (or none), for the caller to judge: the
caller refuses a pair too far apart, so a dead wrist camera shows as refused frames, and the arm
gets no command from half an observation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stamped:
    """A frame (any payload: a message, a decoder) and its capture time in seconds."""

    item: Any
    stamp_s: float


@dataclass(frozen=True)
class FramePair:
    scene: Stamped
    wrist: Stamped | None  # None: no wrist frame had come


def _nearest(stamp_s: float, *frames: Stamped | None) -> Stamped | None:
    present = [f for f in frames if f is not None]
    return min(present, key=lambda f: abs(f.stamp_s - stamp_s), default=None)


class FramePairer:
    """Thread-safe: scene and wrist callbacks may run on different executor threads. Each call
    returns the pairs that became ready (zero, one or two)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wrist: Stamped | None = None  # the newest wrist frame
        # A scene frame waiting for its wrist frame, with the wrist frame newest when it came.
        self._waiting: tuple[Stamped, Stamped | None] | None = None

    def add_scene(self, scene: Stamped) -> list[FramePair]:
        with self._lock:
            superseded, self._waiting = self._waiting, None
            wrist = self._wrist
            paired = wrist is not None and wrist.stamp_s >= scene.stamp_s
            if not paired:
                self._waiting = (scene, wrist)
        ready = [] if superseded is None else [FramePair(*superseded)]
        return [*ready, FramePair(scene, wrist)] if paired else ready

    def add_wrist(self, wrist: Stamped) -> list[FramePair]:
        with self._lock:
            self._wrist = wrist
            waiting, self._waiting = self._waiting, None
        if waiting is None:
            return []
        scene, before = waiting
        return [FramePair(scene, _nearest(scene.stamp_s, before, wrist))]

    def clear(self) -> None:
        """Forget a waiting scene frame (acting stopped)."""
        with self._lock:
            self._waiting = None
