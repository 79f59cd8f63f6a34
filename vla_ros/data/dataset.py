"""Episodes of (camera frame, instruction, 7-D action) built from rosbags, cleaned, with statistics.

The action convention is the one of :mod:`vla_ros.action`: ``[dx, dy, dz, droll, dpitch, dyaw,
gripper]``, deltas per control period in metres / radians, gripper in [0, 1] with 1 = open. Three
recordings provide it:

- ``action_step``: recorded ``vla_ros/ActionStep`` messages (one step each; the frame is the one whose
  header stamp equals ``image_stamp``, else the newest frame received before the step);
- ``twist``: teleop ``geometry_msgs/TwistStamped`` velocities sampled at the control rate,
  delta = twist * period (a twist ``twist_timeout_s`` old counts as zero: teleop stopped);
- ``ee_pose``: ``geometry_msgs/PoseStamped`` end-effector poses sampled at the control rate,
  delta = pose[k+1] - pose[k] (rotation as the rotation vector of R[k+1] R[k]^T, base frame).

For the sampled sources each step takes the newest frame, instruction and gripper command received at or
before its tick (nearest previous). Everything here is numpy and dataclasses, no torch and no ROS.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.action import ACTION_DIM
from vla_ros.data.bag import (
    ACTION_STEP_TYPE,
    COMPRESSED_IMAGE_TYPE,
    GRIPPER_COMMAND_TYPE,
    IMAGE_TYPE,
    INSTRUCTION_TYPE,
    POSE_STAMPED_TYPE,
    STRING_TYPE,
    TWIST_STAMPED_TYPE,
    BagReader,
    TopicRequirement,
    stamp_to_ns,
)
from vla_ros.errors import UserInputError
from vla_ros.geometry import rotation_vector_between
from vla_ros.image_codec import PackedImage, decode_compressed, image_message_to_rgb

ACTION_SOURCES = ("action_step", "twist", "ee_pose")
GRIPPER_INDEX = 6
# How many recent camera frames are kept to match an ActionStep's image_stamp.
_FRAME_HISTORY = 64


class DatasetError(UserInputError, ValueError):
    """The recordings cannot be turned into a dataset as configured."""


# ----------------------------------------------------------------------------------------------------------
# Configuration


# Where record-demos writes the target masks (TopicConfig.target_mask).
DEFAULT_TARGET_MASK_TOPIC = "/vla/target_mask"
# Keys of Episode.step_data.
TARGET_MASK = "target_mask"
EXTRA_VIEWS = "extra_views"


@dataclass
class TopicConfig:
    """Which topics hold what. ``instruction=None`` takes the instruction from the ActionStep's own
    ``instruction`` field (or from :attr:`SyncConfig.fixed_instruction`)."""

    camera: str = "/camera/image_raw"
    instruction: str | None = "/vla/instruction"
    action_source: str = "action_step"
    action_step: str = "/vla/action_step"
    twist: str = "/servo_node/delta_twist_cmds"
    ee_pose: str = "/ee_pose"
    # GripperCommand topic for the twist / ee_pose sources; None: gripper stays SyncConfig.default_gripper.
    gripper: str | None = "/vla/gripper_cmd"
    # Images stamped like the camera's frames, non-zero where the frame shows what the step heads for
    # (simulated recordings write them); None: not read. Steps whose frame has none get no mask.
    target_mask: str | None = None
    # More cameras (e.g. a wrist camera), for models that look at several views per step: each step
    # gets the newest frame of each stamped at or before its own frame, at most one control period
    # older (Episode.step_data[EXTRA_VIEWS]); steps without one are skipped and counted.
    extra_cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.extra_cameras = tuple(self.extra_cameras)
        if self.camera in self.extra_cameras or len(set(self.extra_cameras)) != len(self.extra_cameras):
            raise DatasetError(
                f"each camera topic may be read once: camera {self.camera!r}, "
                f"extra {list(self.extra_cameras)}"
            )
        if self.action_source not in ACTION_SOURCES:
            raise DatasetError(f"action_source must be one of {ACTION_SOURCES}, got {self.action_source!r}")


@dataclass
class SyncConfig:
    """Timing, episode splitting and action-space unification."""

    control_rate_hz: float = 5.0
    split_on_instruction_change: bool = False
    # A pause longer than this in the action source starts a new episode; None: never split on time.
    split_gap_s: float | None = None
    # Teleop twist this old or older at a tick counts as zero motion; None: one control period.
    twist_timeout_s: float | None = None
    # Steps whose newest frame is older than this are skipped; None: any age is accepted.
    image_max_age_s: float | None = None
    # Use this instruction for every step (bags recorded without one).
    fixed_instruction: str | None = None
    # Gripper values meaning open / closed in the recording, mapped to 1 / 0 (e.g. 0.0 / 1.0 for a
    # "1 = closed" convention, or 0.08 / 0.0 for an opening in metres) and clipped to [0, 1].
    gripper_open_value: float = 1.0
    gripper_closed_value: float = 0.0
    # Gripper value before the first GripperCommand (twist / ee_pose sources).
    default_gripper: float = 1.0
    # Multiplies the translation deltas (e.g. 0.001 for a recording in millimetres).
    translation_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.control_rate_hz > 0:
            raise DatasetError(f"control_rate_hz must be positive, got {self.control_rate_hz}")
        if self.gripper_open_value == self.gripper_closed_value:
            raise DatasetError("gripper_open_value and gripper_closed_value must differ")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass
class CleaningConfig:
    """What :func:`clean_episodes` removes."""

    drop_noop_steps: bool = True
    # A step is a no-op when every motion component is within this of zero and the gripper equals the
    # previous step's gripper (the first step: motion alone decides).
    noop_tolerance: float = 1e-9
    # Episodes with fewer steps (after dropping steps) are dropped.
    min_steps: int = 2
    # Episodes with a step whose translation or rotation magnitude exceeds Q3 + k*IQR of that magnitude
    # over all steps are outliers; None disables. A magnitude with zero IQR has no fence.
    outlier_iqr_k: float | None = 3.0
    # "drop" removes outlier episodes, "report" keeps them and only lists them.
    outlier_policy: str = "drop"

    def __post_init__(self) -> None:
        if self.outlier_policy not in ("drop", "report"):
            raise DatasetError(f"outlier_policy must be 'drop' or 'report', got {self.outlier_policy!r}")


# ----------------------------------------------------------------------------------------------------------
# Episode


@dataclass
class Episode:
    """One demonstration: ``images[t]`` (HxWx3 uint8 RGB) is what the robot saw when it took
    ``actions[t]``. Frames read with ``pack_images`` are :class:`PackedImage`: ``np.asarray`` them."""

    images: list[np.ndarray | PackedImage]
    actions: np.ndarray
    instruction: str
    metadata: dict = field(default_factory=dict)
    episode_id: str = ""
    timestamps_ns: np.ndarray | None = None
    # Instruction active at each step (equal to ``instruction`` unless it changed mid-episode).
    step_instructions: list[str] | None = None
    # Action token ids recorded with each step (ActionStep source), empty tuples when unknown.
    token_ids: list[tuple[int, ...]] | None = None
    # Optional per-step data, one list per key, each entry going with ``images[t]``; a key is present
    # only when its topics were read:
    #   TARGET_MASK: which pixels of the image show what the step heads for (HxW bool), or None where
    #     unknown (TopicConfig.target_mask);
    #   EXTRA_VIEWS: the frames of TopicConfig.extra_cameras, in that order (a tuple per step).
    step_data: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions, dtype=np.float64).reshape(-1, ACTION_DIM)
        n = len(self.actions)
        if len(self.images) != n:
            raise DatasetError(f"episode {self.episode_id!r} has {len(self.images)} images but {n} actions")
        if self.timestamps_ns is None:
            self.timestamps_ns = np.arange(n, dtype=np.int64)
        self.timestamps_ns = np.asarray(self.timestamps_ns, dtype=np.int64).reshape(-1)
        if self.step_instructions is None:
            self.step_instructions = [self.instruction] * n
        if self.token_ids is None:
            self.token_ids = [()] * n
        if not (len(self.timestamps_ns) == len(self.step_instructions) == len(self.token_ids) == n):
            raise DatasetError(f"episode {self.episode_id!r}: per-step fields disagree in length")
        for key, values in self.step_data.items():
            if len(values) != n:
                raise DatasetError(
                    f"episode {self.episode_id!r} has {len(values)} {key} entries for {n} steps"
                )
        if len({len(views) for views in self.step_data.get(EXTRA_VIEWS, [])}) > 1:
            raise DatasetError(
                f"episode {self.episode_id!r}: extra camera frames must be given for each of its {n} steps, "
                "the same cameras for each"
            )

    @property
    def num_views(self) -> int:
        """Camera views per step: the main camera's plus the extra cameras'."""
        views = self.step_data.get(EXTRA_VIEWS)
        return 1 + (len(views[0]) if views else 0)

    def __len__(self) -> int:
        return len(self.actions)

    def subset(self, keep: np.ndarray) -> Episode:
        """The episode restricted to the steps where ``keep`` is True."""
        idx = np.flatnonzero(np.asarray(keep, dtype=bool))
        return Episode(
            images=[self.images[i] for i in idx],
            actions=self.actions[idx],
            instruction=self.instruction,
            metadata=dict(self.metadata),
            episode_id=self.episode_id,
            timestamps_ns=self.timestamps_ns[idx],
            step_instructions=[self.step_instructions[i] for i in idx],
            token_ids=[self.token_ids[i] for i in idx],
            step_data={key: [values[i] for i in idx] for key, values in self.step_data.items()},
        )


# ----------------------------------------------------------------------------------------------------------
# Reading one bag


def rotation_delta(q_from_xyzw: Sequence[float], q_to_xyzw: Sequence[float]) -> np.ndarray:
    """Rotation vector (radians, base frame) of the rotation taking orientation ``q_from`` to ``q_to``."""
    return rotation_vector_between(q_from_xyzw, q_to_xyzw)


class _Frame:
    """A received camera message, decoded to RGB only if a step uses it (and then only once)."""

    __slots__ = ("_packed", "_rgb", "bag_ns", "header_ns", "msg", "msgtype")

    def __init__(self, bag_ns: int, msgtype: str, msg: Any) -> None:
        self.bag_ns = bag_ns
        self.header_ns = stamp_to_ns(msg.header.stamp)
        self.msgtype = msgtype
        self.msg = msg
        self._rgb: np.ndarray | None = None
        self._packed: PackedImage | None = None

    def image(self, pack: bool) -> np.ndarray | PackedImage:
        """The frame for an episode: decoded, or PNG-packed (one packed copy however many steps use it)."""
        if not pack:
            return self.rgb()
        if self._packed is None:
            self._packed = PackedImage(self.rgb())
            self._rgb = None
        return self._packed

    @property
    def shape(self) -> tuple[int, ...]:
        """The frame's array shape, without decoding a packed frame to learn it."""
        return self._packed.shape if self._packed is not None else self.rgb().shape

    def rgb(self) -> np.ndarray:
        if self._packed is not None:
            return np.asarray(self._packed)
        if self._rgb is None:
            m = self.msg
            if self.msgtype == COMPRESSED_IMAGE_TYPE:
                self._rgb = decode_compressed(m.format, m.data)
            else:
                self._rgb = image_message_to_rgb(m)
            self.msg = None
        return self._rgb


class _StepData:
    """Optional per-step data read from topics of its own (``Episode.step_data[key]``).

    A reader registers for its topics; the synchroniser hands it their frames as they come
    (:meth:`add`). When a step is formed it :meth:`claim`\\ s what goes with that step's camera frame
    (``None``: the step cannot be formed, and the reader has counted why); when the episode is cut,
    :meth:`value` turns the claim into the step's entry."""

    key = ""
    topics: tuple[str, ...] = ()

    def add(self, topic: str, frame: _Frame) -> None:
        raise NotImplementedError

    def claim(self, frame: _Frame) -> object | None:
        return frame

    def value(self, claimed: object) -> object:
        raise NotImplementedError


class _TargetMasks(_StepData):
    """Per step, the mask stamped like its camera frame (HxW bool) or None (TopicConfig.target_mask).
    A target mostly stays put, so masks with the same encoded bytes share one decoded array."""

    key = TARGET_MASK

    def __init__(self, bag: Path, topic: str) -> None:
        self.bag = bag
        self.topics = (topic,)
        self._by_stamp: dict[int, _Frame] = {}
        self._by_data: dict[bytes, _Frame] = {}
        self._decoded: dict[int, np.ndarray] = {}

    def add(self, topic: str, frame: _Frame) -> None:
        self._by_stamp[frame.header_ns] = self._by_data.setdefault(bytes(frame.msg.data), frame)

    def value(self, frame: _Frame) -> np.ndarray | None:
        found = self._by_stamp.get(frame.header_ns)
        if found is None:
            return None
        if id(found) not in self._decoded:
            self._decoded[id(found)] = found.rgb().max(axis=2) > 0
        mask = self._decoded[id(found)]
        if mask.shape != frame.shape[:2]:
            raise DatasetError(
                f"{self.bag}: the target mask at {frame.header_ns} ns is {mask.shape[1]}x{mask.shape[0]}, "
                f"its frame {frame.shape[1]}x{frame.shape[0]}"
            )
        return mask


class _ExtraViews(_StepData):
    """Per step, each extra camera's newest frame stamped at or before the camera frame, at most one
    control period older (TopicConfig.extra_cameras); a step without one is skipped and counted."""

    key = EXTRA_VIEWS

    def __init__(self, topics: tuple[str, ...], period_s: float, skipped: Counter, pack: bool) -> None:
        self.topics = topics
        self.period_ns = period_s * 1e9
        self.skipped = skipped
        self.pack = pack
        self._recent: dict[str, deque[_Frame]] = {t: deque(maxlen=_FRAME_HISTORY) for t in topics}

    def add(self, topic: str, frame: _Frame) -> None:
        self._recent[topic].append(frame)

    def claim(self, frame: _Frame) -> tuple[_Frame, ...] | None:
        found = []
        for topic, frames in self._recent.items():
            match = next((f for f in reversed(frames) if f.header_ns <= frame.header_ns), None)
            if match is None or frame.header_ns - match.header_ns > self.period_ns:
                self.skipped[f"no {topic} frame within one control period of the camera frame"] += 1
                return None
            found.append(match)
        return tuple(found)

    def value(self, views: tuple[_Frame, ...]) -> tuple[np.ndarray | PackedImage, ...]:
        return tuple(v.image(self.pack) for v in views)


@dataclass
class _Step:
    t_ns: int
    frame: _Frame | None  # None only while an ActionStep waits for its frame
    action: np.ndarray
    instruction: str
    token_ids: tuple[int, ...] = ()
    # What each _StepData reader claimed for this step, by its key.
    claims: dict[str, object] = field(default_factory=dict)


class _EpisodeBuilder:
    """Collects steps of one bag and cuts them into episodes."""

    def __init__(
        self, bag: Path, topics: TopicConfig, sync: SyncConfig, readers: list[_StepData], pack: bool = False
    ) -> None:
        self.bag = bag
        # Whether episodes hold PackedImage frames (read_bag_episodes' pack_images).
        self.pack = pack
        self.topics = topics
        self.sync = sync
        self.readers = readers
        self.episodes: list[Episode] = []
        self.steps: list[_Step] = []

    def add(self, step: _Step) -> None:
        for reader in self.readers:
            claimed = reader.claim(step.frame)
            if claimed is None:
                return
            step.claims[reader.key] = claimed
        if (
            self.sync.split_on_instruction_change
            and self.steps
            and step.instruction != self.steps[-1].instruction
        ):
            self.cut()
        self.steps.append(step)

    def cut(self) -> None:
        if not self.steps:
            return
        steps, self.steps = self.steps, []
        times = np.array([s.t_ns for s in steps], dtype=np.int64)
        dts = np.diff(times) / 1e9
        measured = float(1.0 / np.median(dts)) if len(dts) and np.median(dts) > 0 else None
        instructions = [s.instruction for s in steps]
        self.episodes.append(
            Episode(
                images=[s.frame.image(self.pack) for s in steps],
                actions=np.stack([s.action for s in steps]),
                instruction=instructions[0],
                metadata={
                    "bag": str(self.bag),
                    "action_source": self.topics.action_source,
                    "control_rate_hz": self.sync.control_rate_hz,
                    "measured_rate_hz": measured,
                    "start_ns": int(times[0]),
                    "end_ns": int(times[-1]),
                    "camera_topic": self.topics.camera,
                },
                episode_id=f"{self.bag.name}#{len(self.episodes)}",
                timestamps_ns=times,
                step_instructions=instructions,
                token_ids=[s.token_ids for s in steps],
                step_data={r.key: [r.value(s.claims[r.key]) for s in steps] for r in self.readers},
            )
        )


def _requirements(topics: TopicConfig, sync: SyncConfig) -> list[TopicRequirement]:
    reqs = [TopicRequirement(topics.camera, "camera", (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE), "--camera-topic")]
    if topics.instruction is not None and sync.fixed_instruction is None:
        reqs.append(
            TopicRequirement(
                topics.instruction, "instruction", (INSTRUCTION_TYPE, STRING_TYPE), "--instruction-topic"
            )
        )
    src = topics.action_source
    if src == "action_step":
        reqs.append(
            TopicRequirement(topics.action_step, "action (ActionStep)", (ACTION_STEP_TYPE,), "--action-topic")
        )
    elif src == "twist":
        reqs.append(TopicRequirement(topics.twist, "teleop twist", (TWIST_STAMPED_TYPE,), "--twist-topic"))
    else:
        reqs.append(
            TopicRequirement(topics.ee_pose, "end-effector pose", (POSE_STAMPED_TYPE,), "--ee-pose-topic")
        )
    if src != "action_step" and topics.gripper is not None:
        reqs.append(
            TopicRequirement(topics.gripper, "gripper command", (GRIPPER_COMMAND_TYPE,), "--gripper-topic")
        )
    if topics.target_mask is not None:
        reqs.append(
            TopicRequirement(
                topics.target_mask, "target mask", (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE), "--target-mask-topic"
            )
        )
    for topic in topics.extra_cameras:
        reqs.append(
            TopicRequirement(
                topic, "extra camera", (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE), "--wrist-camera-topic"
            )
        )
    return reqs


def read_bag_episodes(
    bag: str | Path,
    topics: TopicConfig | None = None,
    sync: SyncConfig | None = None,
    skipped: Counter | None = None,
    pack_images: bool = False,
) -> list[Episode]:
    """Synchronised, uncleaned episodes of one bag (one per bag unless ``sync`` splits).

    Steps that cannot be formed (no frame or instruction yet, frame too old) are not emitted; their
    count per reason is added to ``skipped`` when given. ``pack_images``: the episodes' frames are
    :class:`~vla_ros.image_codec.PackedImage` (lossless, ``np.asarray`` decodes), so a training set
    many times larger fits in memory.
    """
    topics = topics or TopicConfig()
    sync = sync or SyncConfig()
    skipped = skipped if skipped is not None else Counter()
    return _BagSynchroniser(Path(bag), topics, sync, skipped, pack_images).read()


class _BagSynchroniser:
    """Turns one bag's messages, in recording order, into steps (see the module docstring): the
    ActionStep source forms a step per message; the sampled sources (twist, ee_pose) tick at the
    control rate. Optional per-step data comes from the registered :class:`_StepData` readers."""

    def __init__(
        self, bag: Path, topics: TopicConfig, sync: SyncConfig, skipped: Counter, pack: bool
    ) -> None:
        self.bag, self.topics, self.sync, self.skipped = bag, topics, sync, skipped
        self.period_ns = round(sync.period_s * 1e9)
        self.twist_timeout_ns = round(
            (sync.twist_timeout_s if sync.twist_timeout_s is not None else sync.period_s) * 1e9
        )
        self.gap_ns = None if sync.split_gap_s is None else round(sync.split_gap_s * 1e9)
        self.max_age_ns = None if sync.image_max_age_s is None else round(sync.image_max_age_s * 1e9)
        readers: list[_StepData] = []
        if topics.target_mask is not None:
            readers.append(_TargetMasks(bag, topics.target_mask))
        if topics.extra_cameras:
            readers.append(_ExtraViews(topics.extra_cameras, sync.period_s, skipped, pack))
        self.readers = {topic: reader for reader in readers for topic in reader.topics}
        self.builder = _EpisodeBuilder(bag, topics, sync, readers, pack)
        self.frames: deque[_Frame] = deque(maxlen=_FRAME_HISTORY)
        self.instruction: str | None = sync.fixed_instruction
        g_open, g_closed = sync.gripper_open_value, sync.gripper_closed_value
        self.gripper_raw = sync.default_gripper * (g_open - g_closed) + g_closed  # the recording's convention
        self.src = topics.action_source
        self.src_topic = {
            "action_step": topics.action_step,
            "twist": topics.twist,
            "ee_pose": topics.ee_pose,
        }[self.src]
        self.last_src_ns: int | None = None
        self.latest_src: Any = None  # newest twist or pose message
        self.next_tick: int | None = None
        # ee_pose: the step waiting for the next pose, with the pose it started from.
        self.pending: tuple[_Step, np.ndarray, np.ndarray] | None = None
        # A recorder that stamps messages on receipt (ros2 bag record does) can log an ActionStep before
        # the frame it answered, when the two travel on different QoS. Such a step waits, until the next
        # step or the end of its segment, for the frame its image_stamp names; if that never comes, it
        # takes what it would have taken on arrival: (step, image stamp, frame on arrival).
        self.waiting: tuple[_Step, int, _Frame | None] | None = None

    def read(self) -> list[Episode]:
        topics = self.topics
        wanted = [topics.camera, self.src_topic]
        if topics.instruction is not None and self.sync.fixed_instruction is None:
            wanted.append(topics.instruction)
        if self.src != "action_step" and topics.gripper is not None:
            wanted.append(topics.gripper)
        wanted.extend(self.readers)
        with BagReader(self.bag) as reader:
            reader.require(_requirements(topics, self.sync))
            for item in reader.messages(wanted):
                # Sampled sources: emit every tick strictly before this message (nearest previous).
                self._advance_ticks(item.timestamp_ns)
                self._dispatch(item)
            self._settle_waiting()
            if self.last_src_ns is not None:
                self._advance_ticks(self.last_src_ns + 1)  # no ticks after the action source ends
        self.builder.cut()
        return self.builder.episodes

    def _dispatch(self, item: Any) -> None:
        t, topics = item.timestamp_ns, self.topics
        if item.topic in self.readers:
            self.readers[item.topic].add(item.topic, _Frame(t, item.msgtype, item.msg))
        elif item.topic == topics.camera:
            self.frames.append(_Frame(t, item.msgtype, item.msg))
            if self.waiting is not None and self.waiting[1] == self.frames[-1].header_ns:
                self._settle_waiting(self.frames[-1])
        elif item.topic == topics.instruction and self.sync.fixed_instruction is None:
            self.instruction = item.msg.text if item.msgtype == INSTRUCTION_TYPE else item.msg.data
        elif item.topic == topics.gripper and self.src != "action_step":
            self.gripper_raw = float(item.msg.position)
        elif item.topic == self.src_topic:
            self._settle_waiting()
            if (
                self.gap_ns is not None
                and self.last_src_ns is not None
                and t - self.last_src_ns > self.gap_ns
            ):
                self._stop_ticking()
                self.builder.cut()
            self.last_src_ns = t
            if self.src == "action_step":
                self._on_action_step(t, item.msg)
            else:
                self.latest_src = item.msg
                if self.next_tick is None:
                    self.next_tick = t  # first tick at the first sample of a (new) segment

    def _unify(self, action: np.ndarray) -> np.ndarray:
        """The recording's action in this package's convention (metres, gripper 1 = open in [0, 1])."""
        g_open, g_closed = self.sync.gripper_open_value, self.sync.gripper_closed_value
        out = np.array(action, dtype=np.float64)
        out[0:3] *= self.sync.translation_scale
        out[GRIPPER_INDEX] = np.clip((out[GRIPPER_INDEX] - g_closed) / (g_open - g_closed), 0.0, 1.0)
        return out

    def _usable(self, frame: _Frame | None, t_ns: int) -> _Frame | None:
        if frame is None:
            self.skipped["no camera frame yet"] += 1
            return None
        if self.max_age_ns is not None and t_ns - frame.bag_ns > self.max_age_ns:
            self.skipped["camera frame older than image_max_age_s"] += 1
            return None
        return frame

    def _newest_frame(self, t_ns: int) -> _Frame | None:
        """The newest frame, for a step that does not name the frame it acted on."""
        return self._usable(self.frames[-1] if self.frames else None, t_ns)

    def _settle_waiting(self, arrived: _Frame | None = None) -> None:
        if self.waiting is None:
            return
        step, _, on_arrival = self.waiting
        self.waiting = None
        step.frame = arrived if arrived is not None else self._usable(on_arrival, step.t_ns)
        if step.frame is not None:
            self.builder.add(step)

    def _on_action_step(self, t: int, msg: Any) -> None:
        instruction = self.instruction
        if instruction is None and self.topics.instruction is None:
            instruction = msg.instruction or None
        if instruction is None:
            self.skipped["no instruction yet"] += 1
            return
        tokens = tuple(int(x) for x in np.asarray(msg.token_ids).reshape(-1))
        step = _Step(t, None, self._unify(np.asarray(msg.action)), instruction, tokens)
        image_ns = stamp_to_ns(msg.image_stamp)
        if not image_ns:
            step.frame = self._newest_frame(t)
        elif (
            answered := next((f for f in reversed(self.frames) if f.header_ns == image_ns), None)
        ) is not None:
            step.frame = self._usable(answered, t)
        else:
            self.waiting = (step, image_ns, self.frames[-1] if self.frames else None)
            return
        if step.frame is not None:
            self.builder.add(step)

    def _tick(self, t_ns: int) -> None:
        """One control tick of a sampled source."""
        if self.instruction is None:
            self.skipped["no instruction yet"] += 1
            return
        frame = self._newest_frame(t_ns)
        if frame is None:
            return
        if self.src == "twist":
            tw = self.latest_src.twist
            fresh = t_ns - self.last_src_ns < self.twist_timeout_ns
            motion = np.array(
                [tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z]
            )
            motion = motion * self.sync.period_s if fresh else np.zeros(6)
            self.builder.add(
                _Step(t_ns, frame, self._unify(np.append(motion, self.gripper_raw)), self.instruction)
            )
            return
        p, q = self.latest_src.pose.position, self.latest_src.pose.orientation
        pos, quat = np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])
        if self.pending is not None:
            step, pos0, quat0 = self.pending
            step.action[0:6] = np.concatenate([pos - pos0, rotation_delta(quat0, quat)])
            step.action = self._unify(step.action)
            self.builder.add(step)
        self.pending = (
            _Step(t_ns, frame, np.append(np.zeros(6), self.gripper_raw), self.instruction),
            pos,
            quat,
        )

    def _stop_ticking(self) -> None:
        self.next_tick = None
        self.pending = None

    def _advance_ticks(self, until_ns: int) -> None:
        while self.next_tick is not None and self.next_tick < until_ns:
            if self.gap_ns is not None and self.next_tick - self.last_src_ns > self.gap_ns:
                self._stop_ticking()
                self.builder.cut()
                return
            self._tick(self.next_tick)
            self.next_tick += self.period_ns


# ----------------------------------------------------------------------------------------------------------
# Cleaning


@dataclass
class RemovedEpisode:
    episode_id: str
    num_steps: int
    reason: str


@dataclass
class CleaningReport:
    """What was read, what was removed and why."""

    episodes_in: int = 0
    steps_in: int = 0
    episodes_out: int = 0
    steps_out: int = 0
    # Steps that could not be synchronised while reading, by reason.
    unsynchronised_steps: dict[str, int] = field(default_factory=dict)
    noop_steps_dropped: dict[str, int] = field(default_factory=dict)
    nonfinite_steps_dropped: dict[str, int] = field(default_factory=dict)
    dropped_episodes: list[RemovedEpisode] = field(default_factory=list)
    # Outlier episodes kept because outlier_policy is "report".
    flagged_episodes: list[RemovedEpisode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"episodes: {self.episodes_in} read, {self.episodes_out} kept; "
            f"steps: {self.steps_in} read, {self.steps_out} kept"
        ]
        for reason, n in sorted(self.unsynchronised_steps.items()):
            lines.append(f"  {n} step(s) not formed: {reason}")
        if self.noop_steps_dropped:
            lines.append(
                f"  {sum(self.noop_steps_dropped.values())} no-op step(s) dropped in "
                f"{len(self.noop_steps_dropped)} episode(s)"
            )
        if self.nonfinite_steps_dropped:
            lines.append(
                f"  {sum(self.nonfinite_steps_dropped.values())} step(s) with NaN/inf actions dropped"
            )
        lines.extend(
            f"  dropped {e.episode_id} ({e.num_steps} steps): {e.reason}" for e in self.dropped_episodes
        )
        lines.extend(f"  outlier kept {e.episode_id}: {e.reason}" for e in self.flagged_episodes)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def noop_mask(actions: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """True for steps that move nothing and leave the gripper as the previous step left it."""
    actions = np.asarray(actions, dtype=np.float64).reshape(-1, ACTION_DIM)
    still = np.all(np.abs(actions[:, :6]) <= tolerance, axis=1)
    grip = actions[:, GRIPPER_INDEX]
    same_grip = np.ones(len(actions), dtype=bool)
    same_grip[1:] = np.abs(np.diff(grip)) <= tolerance
    return still & same_grip


def clean_episodes(
    episodes: Sequence[Episode], config: CleaningConfig | None = None, report: CleaningReport | None = None
) -> tuple[list[Episode], CleaningReport]:
    """Drop non-finite and no-op steps, too-short episodes and outlier episodes; say what and why."""
    config = config or CleaningConfig()
    report = report or CleaningReport()
    report.episodes_in += len(episodes)
    report.steps_in += sum(len(e) for e in episodes)
    kept: list[Episode] = []
    for ep in episodes:
        finite = np.all(np.isfinite(ep.actions), axis=1)
        if not finite.all():
            report.nonfinite_steps_dropped[ep.episode_id] = int((~finite).sum())
            ep = ep.subset(finite)
        if config.drop_noop_steps and len(ep):
            noop = noop_mask(ep.actions, config.noop_tolerance)
            if noop.any():
                report.noop_steps_dropped[ep.episode_id] = int(noop.sum())
                ep = ep.subset(~noop)
        if len(ep) < config.min_steps:
            report.dropped_episodes.append(
                RemovedEpisode(
                    ep.episode_id, len(ep), f"too short: {len(ep)} step(s) < min_steps={config.min_steps}"
                )
            )
            continue
        kept.append(ep)

    if config.outlier_iqr_k is not None and kept:
        pooled = np.concatenate([e.actions for e in kept])
        mags = {
            "translation": (np.linalg.norm(pooled[:, 0:3], axis=1), slice(0, 3), "m"),
            "rotation": (np.linalg.norm(pooled[:, 3:6], axis=1), slice(3, 6), "rad"),
        }
        fences: dict[str, float] = {}
        for name, (values, _, _) in mags.items():
            q1, q3 = np.quantile(values, [0.25, 0.75])
            if q3 - q1 > 0:
                fences[name] = float(q3 + config.outlier_iqr_k * (q3 - q1))
            else:
                report.notes.append(
                    f"{name} step magnitudes have zero spread (IQR 0): no outlier fence applied"
                )
        survivors: list[Episode] = []
        for ep in kept:
            reasons = []
            for name, fence in fences.items():
                _, dims, unit = mags[name]
                peak = float(np.max(np.linalg.norm(ep.actions[:, dims], axis=1)))
                if peak > fence:
                    reasons.append(
                        f"outlier: max {name} step {peak:.4g} {unit} exceeds "
                        f"Q3 + {config.outlier_iqr_k:g}*IQR = {fence:.4g} {unit} over all steps"
                    )
            if reasons:
                entry = RemovedEpisode(ep.episode_id, len(ep), "; ".join(reasons))
                if config.outlier_policy == "drop":
                    report.dropped_episodes.append(entry)
                    continue
                report.flagged_episodes.append(entry)
            survivors.append(ep)
        kept = survivors

    report.episodes_out += len(kept)
    report.steps_out += sum(len(e) for e in kept)
    return kept, report


def load_episodes(
    bags: Iterable[str | Path],
    topics: TopicConfig | None = None,
    sync: SyncConfig | None = None,
    cleaning: CleaningConfig | None = None,
    progress: bool = False,
    pack_images: bool = False,
) -> tuple[list[Episode], CleaningReport]:
    """Read, synchronise and clean the episodes of several bags. ``cleaning=None`` cleans with the
    defaults; pass ``CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)`` to keep all.
    ``pack_images``: see :func:`read_bag_episodes`."""
    bags = [Path(b) for b in bags]
    if not bags:
        raise DatasetError("no bags given")
    skipped: Counter = Counter()
    episodes: list[Episode] = []
    iterator: Iterable[Path] = bags
    if progress:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="reading bags", unit="bag")
    for bag in iterator:
        episodes.extend(read_bag_episodes(bag, topics, sync, skipped, pack_images))
    report = CleaningReport(unsynchronised_steps=dict(skipped))
    for ep in episodes:
        rate = ep.metadata.get("measured_rate_hz")
        target = ep.metadata.get("control_rate_hz")
        if (
            ep.metadata.get("action_source") == "action_step"
            and rate
            and target
            and abs(rate / target - 1) > 0.1
        ):
            report.notes.append(
                f"{ep.episode_id}: ActionSteps recorded at {rate:.3g} Hz but the target control rate is "
                f"{target:.3g} Hz; deltas are per recorded step"
            )
    return clean_episodes(episodes, cleaning, report)


# ----------------------------------------------------------------------------------------------------------
# Normalisation statistics (OpenVLA's dataset_statistics.json)


def action_mask() -> list[bool]:
    """Which action dimensions are normalised: all but the gripper, as upstream."""
    return [i != GRIPPER_INDEX for i in range(ACTION_DIM)]


def compute_dataset_statistics(episodes: Sequence[Episode]) -> dict:
    """Statistics of one dataset in the official layout (the value under the dataset's name)."""
    if not episodes or not any(len(e) for e in episodes):
        raise DatasetError("no steps to compute statistics from (all episodes empty or removed by cleaning)")
    actions = np.concatenate([e.actions for e in episodes if len(e)])

    def stats(a: np.ndarray) -> dict:
        return {
            "mean": a.mean(axis=0).tolist(),
            "std": a.std(axis=0).tolist(),
            "max": a.max(axis=0).tolist(),
            "min": a.min(axis=0).tolist(),
            "q01": np.quantile(a, 0.01, axis=0).tolist(),
            "q99": np.quantile(a, 0.99, axis=0).tolist(),
        }

    return {
        "action": {**stats(actions), "mask": action_mask()},
        "proprio": stats(np.zeros((1, ACTION_DIM))),
        "num_transitions": len(actions),
        "num_trajectories": int(sum(1 for e in episodes if len(e))),
    }


def write_dataset_statistics(path: str | Path, dataset_name: str, episodes: Sequence[Episode]) -> Path:
    """Write ``{dataset_name: statistics}`` to ``path`` (a .json file, or else a directory that will
    hold dataset_statistics.json) atomically, so an interrupted run never leaves a half-written file."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / "dataset_statistics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({dataset_name: compute_dataset_statistics(episodes)}, indent=2))
    os.replace(tmp, path)
    return path
