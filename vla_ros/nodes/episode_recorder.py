"""EpisodeRecorder: records one episode's topics into a rosbag2 (mcap or sqlite3), like ``ros2 bag record``.

It subscribes like any other node (so what is recorded is what crossed DDS), stamps each message
with its receive time on the node's clock (sim time under ``use_sim_time``), and writes the CDR
bytes rclpy serializes through :class:`vla_ros.data.bag.BagWriter`, on one writer thread (sqlite3
objects may only be used from the thread that made them; callbacks run on any executor thread).
Messages stamped before the episode began (in flight from the previous one) are left out. Latched
topics (the scene) are cached and their latest message is written when a bag opens. Camera frames
are also kept as arrays for the episode's picture strip / GIF.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from vla_ros.data.bag import BagWriter
from vla_ros.image_codec import image_message_to_rgb
from vla_ros.msg import ActionStep, Instruction, Scene
from vla_ros.nodes.common import COMMAND_QOS, LATCHED_QOS, stamp_to_s

# topic -> (message class, rosbag2 type name, QoS, latched)
RECORDED_TOPICS = {
    "image_raw": (Image, "sensor_msgs/msg/Image", qos_profile_sensor_data, False),
    "instruction": (Instruction, "vla_ros/msg/Instruction", COMMAND_QOS, False),
    "action_step": (ActionStep, "vla_ros/msg/ActionStep", COMMAND_QOS, False),
    "ee_pose": (PoseStamped, "geometry_msgs/msg/PoseStamped", COMMAND_QOS, False),
    "scene": (Scene, "vla_ros/msg/Scene", LATCHED_QOS, True),
}
IMAGE_TOPIC = "image_raw"


@dataclass
class Recording:
    """What one episode's bag holds: message counts per (fully qualified) topic, and the frames."""

    path: Path | None
    storage: str
    counts: dict[str, int] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)


class EpisodeRecorder(Node):
    def __init__(self, keep_frames: bool = True, **kwargs) -> None:
        super().__init__("episode_recorder", **kwargs)
        self.keep_frames = keep_frames
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._writer_thread: threading.Thread | None = None
        self._writer_error: Exception | None = None
        self._recording: Recording | None = None
        self._since_s = 0.0
        self._latched: dict[str, tuple[int, object]] = {}
        self._topics: dict[str, str] = {}
        for topic, (msg_type, _, qos, _) in RECORDED_TOPICS.items():
            sub = self.create_subscription(
                msg_type, topic, lambda msg, t=topic: self._on_message(t, msg), qos
            )
            self._topics[topic] = sub.topic_name

    def start(self, since_s: float, path: Path | None = None, storage: str = "mcap") -> None:
        """Begin an episode at sim time ``since_s``; with ``path`` also write a bag there (must not exist)."""
        with self._lock:
            if self._recording is not None:
                raise RuntimeError("a recording is already running: call stop() first")
            self._since_s = since_s
            self._recording = Recording(path=path, storage=storage)
            if path is not None:
                writer = BagWriter(path, storage=storage)  # fails here if the path exists
                self._queue = queue.Queue()
                self._writer_thread = threading.Thread(
                    target=self._write_bag, args=(writer, self._queue), name="bag-writer", daemon=True
                )
                self._writer_thread.start()
            for topic, (stamp_ns, msg) in sorted(self._latched.items()):
                if stamp_to_s(msg.header.stamp) >= since_s:
                    self._write(topic, stamp_ns, msg)

    def count(self, topic: str) -> int:
        """Messages of ``topic`` (a key of RECORDED_TOPICS) recorded so far in the running episode."""
        with self._lock:
            if self._recording is None:
                return 0
            return self._recording.counts.get(self._topics[topic], 0)

    def stop(self) -> Recording:
        """End the episode; returns once its bag (if any) is closed and complete."""
        with self._lock:
            recording, self._recording = self._recording, None
            bag_queue, self._queue = self._queue, None
        if recording is None:
            raise RuntimeError("no recording is running: call start() first")
        if bag_queue is not None:
            bag_queue.put(None)
            self._writer_thread.join()
            if self._writer_error is not None:
                error, self._writer_error = self._writer_error, None
                raise error
        return recording

    @staticmethod
    def _drain(writer: BagWriter, bag_queue: queue.Queue) -> None:
        while (item := bag_queue.get()) is not None:
            writer.write_serialized(*item)

    def _write_bag(self, writer: BagWriter, bag_queue: queue.Queue) -> None:
        try:
            with writer:
                self._drain(writer, bag_queue)
        except Exception as exc:  # reported by stop(); keep draining so callbacks never block
            self._writer_error = exc
            while bag_queue.get() is not None:
                pass

    def _on_message(self, topic: str, msg) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        with self._lock:
            if RECORDED_TOPICS[topic][3]:
                self._latched[topic] = (stamp_ns, msg)
            if self._recording is None or stamp_to_s(msg.header.stamp) < self._since_s:
                return
            self._write(topic, stamp_ns, msg)

    def _write(self, topic: str, stamp_ns: int, msg) -> None:
        """Caller holds the lock and a recording is running."""
        recording = self._recording
        name = self._topics[topic]
        if self._queue is not None:
            self._queue.put((name, RECORDED_TOPICS[topic][1], stamp_ns, serialize_message(msg)))
        recording.counts[name] = recording.counts.get(name, 0) + 1
        if topic == IMAGE_TOPIC and self.keep_frames:
            recording.frames.append(image_message_to_rgb(msg))
