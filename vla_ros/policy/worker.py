"""Runs a policy off the ROS executor thread, always on the newest camera frame.

A VLA forward pass takes far longer than a camera period. Running it in the image callback backs up
the executor and acts on ever older frames; queueing frames makes it worse. The worker keeps exactly
one pending frame (a newer frame replaces it and counts as dropped), refuses frames older than
``image_max_age_s`` when inference would start (and frames stamped more than that in the future: the
camera's clock is not this one, so their age means nothing), and never runs faster than ``max_rate_hz``.
Both refusals count as ``frames_refused_stale``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_ros.action import Action, Policy, predict


@dataclass(frozen=True)
class Frame:
    """A camera image in RGB with the stamp of its capture, in the clock the worker is given."""

    rgb: np.ndarray
    stamp_s: float
    frame_id: str = ""
    # The other cameras' images that go with this one, for a multi-view policy (e.g. the wrist camera).
    extra: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class StepResult:
    action: Action
    frame: Frame
    instruction: str
    step: int


@dataclass
class WorkerStats:
    steps: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    frames_refused_stale: int = 0
    errors: int = 0
    last_error: str = ""
    latency_p50_s: float = float("nan")
    latency_p95_s: float = float("nan")
    rate_hz: float = 0.0


class InferenceWorker:
    """Owns the policy and one background thread; all public methods are thread-safe."""

    def __init__(
        self,
        policy: Policy,
        on_result: Callable[[StepResult], None],
        clock_s: Callable[[], float],
        *,
        image_max_age_s: float = 0.5,
        max_rate_hz: float = 5.0,
        on_error: Callable[[str], None] | None = None,
        latency_window: int = 200,
    ) -> None:
        if image_max_age_s <= 0:
            raise ValueError(f"image_max_age_s must be positive, got {image_max_age_s}")
        if max_rate_hz <= 0:
            raise ValueError(f"max_rate_hz must be positive, got {max_rate_hz}")
        self._policy = policy
        self._on_result = on_result
        self._on_error = on_error or (lambda _msg: None)
        self._clock_s = clock_s
        self.image_max_age_s = image_max_age_s
        self.min_period_s = 1.0 / max_rate_hz
        self._cv = threading.Condition()
        self._pending: Frame | None = None
        self._instruction: str | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._stats = WorkerStats()
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._step_times: deque[float] = deque(maxlen=latency_window)

    # -- inputs -------------------------------------------------------------------------------
    def submit_frame(self, frame: Frame) -> None:
        with self._cv:
            self._stats.frames_received += 1
            if self._pending is not None:
                self._stats.frames_dropped += 1
            self._pending = frame
            self._cv.notify()

    def set_instruction(self, instruction: str | None) -> None:
        """``None`` or an empty string means: no instruction, so no action."""
        with self._cv:
            self._instruction = instruction.strip() if instruction and instruction.strip() else None
            self._cv.notify()

    @property
    def instruction(self) -> str | None:
        with self._cv:
            return self._instruction

    def report_error(self, message: str) -> None:
        """Record an input problem found outside the worker (e.g. an undecodable image)."""
        with self._cv:
            self._stats.errors += 1
            self._stats.last_error = message
        self._on_error(message)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        with self._cv:
            if self._running:
                return
            self._running = True
            self._pending = None
        self._thread = threading.Thread(target=self._loop, name="vla-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._running = False
            self._pending = None
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._running

    def stats(self) -> WorkerStats:
        with self._cv:
            snapshot = WorkerStats(**vars(self._stats))
            if self._latencies:
                lat = np.asarray(self._latencies)
                snapshot.latency_p50_s = float(np.percentile(lat, 50))
                snapshot.latency_p95_s = float(np.percentile(lat, 95))
            if len(self._step_times) >= 2:
                span = self._step_times[-1] - self._step_times[0]
                snapshot.rate_hz = (len(self._step_times) - 1) / span if span > 0 else 0.0
            return snapshot

    # -- the loop -----------------------------------------------------------------------------
    def _next_job(self) -> tuple[Frame, str] | None:
        with self._cv:
            while self._running and (self._pending is None or self._instruction is None):
                self._cv.wait(timeout=0.1)
            if not self._running:
                return None
            frame, self._pending = self._pending, None
            return frame, self._instruction

    def _loop(self) -> None:
        last_start = -float("inf")
        while True:
            job = self._next_job()
            if job is None:
                return
            wait_s = last_start + self.min_period_s - time.monotonic()
            if wait_s > 0:
                # Sleep off the rate limit, then take whatever frame is newest by then.
                time.sleep(wait_s)
                with self._cv:
                    if self._pending is not None:
                        self._stats.frames_dropped += 1
                        job = (self._pending, job[1])
                        self._pending = None
            frame, instruction = job
            age_s = self._clock_s() - frame.stamp_s
            if age_s > self.image_max_age_s or age_s < -self.image_max_age_s:
                with self._cv:
                    self._stats.frames_refused_stale += 1
                    self._stats.last_error = (
                        f"refused a frame {age_s:.3f} s old (image_max_age_s={self.image_max_age_s})"
                        if age_s > 0
                        else f"refused a frame stamped {-age_s:.3f} s in the future (more than "
                        f"image_max_age_s={self.image_max_age_s}): are the camera's and this node's clocks "
                        "synchronised?"
                    )
                continue
            last_start = time.monotonic()
            try:
                action = predict(self._policy, frame.rgb, instruction, frame.extra)
                if not action.is_finite():
                    raise FloatingPointError(f"policy returned a non-finite action {action.vector.tolist()}")
            except Exception as exc:  # a failing step must not kill the worker; the node reports it
                self.report_error(f"inference failed: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.monotonic() - last_start
            with self._cv:
                self._stats.steps += 1
                step = self._stats.steps
                self._latencies.append(elapsed)
                self._step_times.append(last_start)
            try:
                self._on_result(StepResult(action=action, frame=frame, instruction=instruction, step=step))
            except Exception as exc:  # e.g. publishing while the node shuts down
                self.report_error(f"publishing a step failed: {type(exc).__name__}: {exc}")
