"""The inference worker acts on the newest frame only, refuses stale frames and survives failures."""

from __future__ import annotations

import threading
import time

import numpy as np

from vla_ros.action import Action
from vla_ros.policy.worker import Frame, InferenceWorker, StepResult


class SlowEchoPolicy:
    """Takes ``delay_s`` per step and encodes the frame's first pixel into the action."""

    name = "slow-echo"

    def __init__(self, delay_s: float = 0.05, fail_on: int | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.seen: list[int] = []

    def predict_action(self, image: np.ndarray, instruction: str) -> Action:
        time.sleep(self.delay_s)
        marker = int(image[0, 0, 0])
        self.seen.append(marker)
        if self.fail_on is not None and marker == self.fail_on:
            raise RuntimeError("boom")
        if marker == 255:
            return Action(vector=[np.nan] * 7)
        return Action(vector=[marker / 100.0, 0, 0, 0, 0, 0, 1.0])


def _frame(marker: int, stamp_s: float) -> Frame:
    rgb = np.full((4, 4, 3), marker, dtype=np.uint8)
    return Frame(rgb=rgb, stamp_s=stamp_s)


def _collector():
    results: list[StepResult] = []
    done = threading.Event()

    def on_result(result: StepResult) -> None:
        results.append(result)
        done.set()

    return results, done, on_result


def test_burst_of_frames_leaves_no_backlog_and_acts_on_the_newest() -> None:
    policy = SlowEchoPolicy(delay_s=0.05)
    results, _, on_result = _collector()
    worker = InferenceWorker(
        policy, on_result, clock_s=time.monotonic, image_max_age_s=10.0, max_rate_hz=100.0
    )
    worker.set_instruction("pick up the gear")
    worker.start()
    try:
        for marker in range(100):
            worker.submit_frame(_frame(marker, time.monotonic()))
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and (not policy.seen or policy.seen[-1] != 99):
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        worker.stop()
    stats = worker.stats()
    assert policy.seen[-1] == 99, "the newest frame must be acted on"
    assert len(policy.seen) <= 3, f"a burst must not queue up: processed {policy.seen}"
    assert stats.frames_received == 100
    assert stats.frames_dropped >= 97
    assert results[-1].frame.rgb[0, 0, 0] == 99


def test_frames_older_than_the_limit_are_refused() -> None:
    policy = SlowEchoPolicy(delay_s=0.0)
    results, _, on_result = _collector()
    worker = InferenceWorker(
        policy, on_result, clock_s=time.monotonic, image_max_age_s=0.2, max_rate_hz=100.0
    )
    worker.set_instruction("pick up the gear")
    worker.start()
    try:
        worker.submit_frame(_frame(1, time.monotonic() - 5.0))
        time.sleep(0.3)
        worker.submit_frame(_frame(2, time.monotonic()))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not results:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert policy.seen == [2]
    assert worker.stats().frames_refused_stale == 1
    assert "refused a frame" in worker.stats().last_error


def test_frames_stamped_in_the_future_are_refused() -> None:
    """A camera whose clock runs ahead would pass any age check for ever: its frames are refused."""
    policy = SlowEchoPolicy(delay_s=0.0)
    results, _, on_result = _collector()
    worker = InferenceWorker(
        policy, on_result, clock_s=time.monotonic, image_max_age_s=0.2, max_rate_hz=100.0
    )
    worker.set_instruction("pick up the gear")
    worker.start()
    try:
        worker.submit_frame(_frame(1, time.monotonic() + 10.0))
        time.sleep(0.3)
        worker.submit_frame(_frame(2, time.monotonic() + 0.1))  # within the tolerance: acted on
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not results:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert policy.seen == [2]
    assert worker.stats().frames_refused_stale == 1
    assert "in the future" in worker.stats().last_error


def test_no_instruction_means_no_action() -> None:
    policy = SlowEchoPolicy(delay_s=0.0)
    results, _, on_result = _collector()
    worker = InferenceWorker(
        policy, on_result, clock_s=time.monotonic, image_max_age_s=10.0, max_rate_hz=100.0
    )
    worker.start()
    try:
        worker.submit_frame(_frame(3, time.monotonic()))
        time.sleep(0.3)
        assert results == []
        worker.set_instruction("   ")
        time.sleep(0.2)
        assert results == []
        worker.set_instruction("push the bolt left")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not results:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert [r.instruction for r in results] == ["push the bolt left"]


def test_failing_and_non_finite_steps_are_reported_and_the_worker_keeps_going() -> None:
    policy = SlowEchoPolicy(delay_s=0.0, fail_on=7)
    results, _, on_result = _collector()
    errors: list[str] = []
    worker = InferenceWorker(
        policy,
        on_result,
        clock_s=time.monotonic,
        image_max_age_s=10.0,
        max_rate_hz=100.0,
        on_error=errors.append,
    )
    worker.set_instruction("pick")
    worker.start()
    try:
        for marker in (7, 255, 8):
            worker.submit_frame(_frame(marker, time.monotonic()))
            time.sleep(0.15)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not results:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert [int(r.frame.rgb[0, 0, 0]) for r in results] == [8]
    assert len(errors) == 2
    assert "RuntimeError: boom" in errors[0]
    assert "non-finite" in errors[1]
    assert worker.stats().errors == 2


def test_rate_limit_spaces_steps_at_least_one_period_apart() -> None:
    policy = SlowEchoPolicy(delay_s=0.0)
    starts: list[float] = []
    original = policy.predict_action

    def timed(image, instruction):
        starts.append(time.monotonic())
        return original(image, instruction)

    policy.predict_action = timed
    _, _, on_result = _collector()
    worker = InferenceWorker(
        policy, on_result, clock_s=time.monotonic, image_max_age_s=10.0, max_rate_hz=10.0
    )
    worker.set_instruction("pick")
    worker.start()
    try:
        start = time.monotonic()
        while time.monotonic() - start < 0.55:
            worker.submit_frame(_frame(1, time.monotonic()))
            time.sleep(0.005)
    finally:
        worker.stop()
    assert len(starts) >= 2
    assert min(np.diff(starts)) >= 0.1 - 1e-3
