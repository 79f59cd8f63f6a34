"""rosbag2 reading and writing without ROS, through ``rosbags``.

Our own messages (vla_ros/msg/*.msg) are registered into a ROS 2 Jazzy typestore at run time from the
package's msg/ files, so a bag written here reads in ``ros2 bag`` and the other way round. Bags are
read as typed ``rosbags`` message objects; everything above this module (dataset, evaluation) turns
them into numpy arrays.

Errors are :class:`BagError` subclasses whose messages name the bag, what is missing and what exists.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.errors import UserInputError
from vla_ros.image_codec import encode_compressed, rgb_to_image_fields
from vla_ros.scene_fields import location_fields, object_fields

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
STRING_TYPE = "std_msgs/msg/String"
POSE_STAMPED_TYPE = "geometry_msgs/msg/PoseStamped"
TWIST_STAMPED_TYPE = "geometry_msgs/msg/TwistStamped"
ACTION_STEP_TYPE = "vla_ros/msg/ActionStep"
INSTRUCTION_TYPE = "vla_ros/msg/Instruction"
GRIPPER_COMMAND_TYPE = "vla_ros/msg/GripperCommand"
SCENE_TYPE = "vla_ros/msg/Scene"
CLARIFICATION_TYPE = "vla_ros/msg/Clarification"

STORAGE_FORMATS = ("mcap", "sqlite3")
MSG_DIR_ENV = "VLA_ROS_MSG_DIR"


class BagError(UserInputError):
    """A bag cannot be used as asked."""


class BagNotFoundError(BagError, FileNotFoundError):
    """The path does not exist or holds no rosbag2 data."""


class EmptyBagError(BagError):
    """The bag opens but contains no messages."""


class CorruptBagError(BagError):
    """The bag's files are truncated, damaged or not rosbag2 at all."""


class MissingTopicsError(BagError):
    """Topics the caller needs are absent, empty or of the wrong type."""


class MessageDefinitionsNotFoundError(BagError):
    """The vla_ros msg/ directory (our message definitions) could not be located."""


# ----------------------------------------------------------------------------------------------------------
# Type store


def find_msg_dir() -> Path:
    """Where our .msg files are: $VLA_ROS_MSG_DIR, the source tree, or an installed share/vla_ros/msg."""
    candidates: list[Path] = []
    if env := os.environ.get(MSG_DIR_ENV):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[2] / "msg")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "vla_ros" / "msg")
    for cand in candidates:
        if (cand / "ActionStep.msg").is_file():
            return cand
    raise MessageDefinitionsNotFoundError(
        "cannot find the vla_ros message definitions (ActionStep.msg ...); looked in "
        + ", ".join(str(c) for c in candidates)
        + f"; set {MSG_DIR_ENV} to the package's msg/ directory"
    )


@functools.lru_cache(maxsize=4)
def _typestore_for(msg_dir: str) -> Any:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    typestore = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for path in sorted(Path(msg_dir).glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vla_ros/msg/{path.stem}"))
    typestore.register(types)
    return typestore


def get_vla_typestore(msg_dir: str | Path | None = None) -> Any:
    """A ROS 2 Jazzy ``rosbags`` typestore with the vla_ros messages registered (cached)."""
    return _typestore_for(str(Path(msg_dir) if msg_dir is not None else find_msg_dir()))


def _stamp(typestore: Any, stamp_ns: int) -> Any:
    time_cls = typestore.types["builtin_interfaces/msg/Time"]
    stamp_ns = int(stamp_ns)
    return time_cls(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (any object with sec and nanosec) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# ----------------------------------------------------------------------------------------------------------
# Writing


class BagWriter:
    """Writes a rosbag2 (mcap by default, or sqlite3) with typed helpers for the topics we record.

    Use as a context manager. Each ``write_*`` takes the topic and the receive time in nanoseconds
    (also used as header stamp). A topic keeps the type of its first message. On an exception inside
    the ``with`` block the bag is still closed properly, so what was written stays readable.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", msg_dir: str | Path | None = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGE_FORMATS:
            raise ValueError(f"storage must be one of {STORAGE_FORMATS}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(
                f"{self.path} exists already; choose a new bag path (bags are never overwritten)"
            )
        self.storage = storage
        self.typestore = get_vla_typestore(msg_dir)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self._is_open = False

    def open(self) -> BagWriter:
        self._writer.open()
        self._is_open = True
        return self

    def close(self) -> None:
        if self._is_open:
            self._is_open = False
            self._writer.close()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic ---------------------------------------------------------------------------------------
    def types(self) -> Any:
        """The message classes of the typestore (``writer.types()['std_msgs/msg/String'](data='x')``)."""
        return self.typestore.types

    def write_message(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Write any message object of the typestore on ``topic`` at receive time ``stamp_ns``."""
        if not self._is_open:
            raise BagError(f"bag writer for {self.path} is not open; use it as a context manager")
        msgtype = msg.__msgtype__
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} already carries {conn.msgtype}; cannot also write {msgtype}")
        self._writer.write(conn, int(stamp_ns), self.typestore.serialize_cdr(msg, msgtype))

    def write_serialized(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """Write an already CDR-serialized message (what rclpy's ``serialize_message`` returns, what
        ``ros2 bag record`` stores) of ``msgtype`` (``sensor_msgs/msg/Image``) on ``topic``."""
        if not self._is_open:
            raise BagError(f"bag writer for {self.path} is not open; use it as a context manager")
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} already carries {conn.msgtype}; cannot also write {msgtype}")
        self._writer.write(conn, int(stamp_ns), bytes(data))

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        return self.typestore.types["std_msgs/msg/Header"](
            stamp=_stamp(self.typestore, stamp_ns), frame_id=frame_id
        )

    # -- typed helpers ---------------------------------------------------------------------------------
    def write_image(
        self,
        topic: str,
        stamp_ns: int,
        rgb: np.ndarray,
        frame_id: str = "camera",
        header_stamp_ns: int | None = None,
    ) -> None:
        """Log ``rgb`` at ``stamp_ns``; its header says ``header_stamp_ns`` (capture time) if given."""
        fields = rgb_to_image_fields(rgb)
        msg = self.types()[IMAGE_TYPE](
            header=self._header(stamp_ns if header_stamp_ns is None else header_stamp_ns, frame_id),
            height=fields["height"],
            width=fields["width"],
            encoding=fields["encoding"],
            is_bigendian=0,
            step=fields["step"],
            data=np.frombuffer(fields["data"], dtype=np.uint8),
        )
        self.write_message(topic, stamp_ns, msg)

    def write_compressed_image(
        self, topic: str, stamp_ns: int, rgb: np.ndarray, codec: str = "png", frame_id: str = "camera"
    ) -> None:
        msg = self.types()[COMPRESSED_IMAGE_TYPE](
            header=self._header(stamp_ns, frame_id),
            format=codec.lower(),
            data=np.frombuffer(encode_compressed(rgb, codec), dtype=np.uint8),
        )
        self.write_message(topic, stamp_ns, msg)

    def write_string(self, topic: str, stamp_ns: int, text: str) -> None:
        self.write_message(topic, stamp_ns, self.types()[STRING_TYPE](data=text))

    def write_instruction(
        self,
        topic: str,
        stamp_ns: int,
        text: str,
        *,
        raw_text: str = "",
        language: str = "en",
        action: str = "",
        object_id: str = "",
        target_id: str = "",
        direction: str = "",
        confidence: float = 1.0,
        request_id: str = "",
    ) -> None:
        msg = self.types()[INSTRUCTION_TYPE](
            header=self._header(stamp_ns, ""),
            text=text,
            raw_text=raw_text or text,
            language=language,
            action=action,
            object_id=object_id,
            target_id=target_id,
            direction=direction,
            confidence=float(confidence),
            request_id=request_id,
        )
        self.write_message(topic, stamp_ns, msg)

    def write_action_step(
        self,
        topic: str,
        stamp_ns: int,
        action: Sequence[float] | np.ndarray,
        *,
        image_stamp_ns: int = 0,
        instruction: str = "",
        token_ids: Sequence[int] = (),
        model_id: str = "",
        adapter_id: str = "",
        precision: str = "",
        unnorm_key: str = "",
        inference_time_s: float = 0.0,
        step: int = 0,
        frame_id: str = "",
    ) -> None:
        vec = np.asarray(getattr(action, "vector", action), dtype=np.float64).reshape(-1)
        if vec.shape != (7,):
            raise ValueError(f"an ActionStep holds 7 values, got shape {vec.shape}")
        msg = self.types()[ACTION_STEP_TYPE](
            header=self._header(stamp_ns, frame_id),
            image_stamp=_stamp(self.typestore, image_stamp_ns),
            action=vec,
            token_ids=np.asarray(token_ids, dtype=np.int32).reshape(-1),
            instruction=instruction,
            model_id=model_id,
            adapter_id=adapter_id,
            precision=precision,
            unnorm_key=unnorm_key,
            inference_time_s=float(inference_time_s),
            step=int(step),
        )
        self.write_message(topic, stamp_ns, msg)

    def write_pose(
        self,
        topic: str,
        stamp_ns: int,
        position: Sequence[float],
        orientation_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        frame_id: str = "base_link",
    ) -> None:
        t = self.types()
        x, y, z = (float(v) for v in position)
        qx, qy, qz, qw = (float(v) for v in orientation_xyzw)
        pose = t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=x, y=y, z=z),
            orientation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
        )
        self.write_message(
            topic, stamp_ns, t[POSE_STAMPED_TYPE](header=self._header(stamp_ns, frame_id), pose=pose)
        )

    def write_twist(
        self,
        topic: str,
        stamp_ns: int,
        linear_m_s: Sequence[float],
        angular_rad_s: Sequence[float],
        frame_id: str = "base_link",
    ) -> None:
        t = self.types()
        vec3 = t["geometry_msgs/msg/Vector3"]
        twist = t["geometry_msgs/msg/Twist"](
            linear=vec3(*(float(v) for v in linear_m_s)), angular=vec3(*(float(v) for v in angular_rad_s))
        )
        self.write_message(
            topic, stamp_ns, t[TWIST_STAMPED_TYPE](header=self._header(stamp_ns, frame_id), twist=twist)
        )

    def write_gripper(self, topic: str, stamp_ns: int, position: float, max_effort_n: float = 0.0) -> None:
        """GripperCommand with position in [0, 1], 1 = open (``close`` is derived from it)."""
        msg = self.types()[GRIPPER_COMMAND_TYPE](
            header=self._header(stamp_ns, ""),
            position=float(position),
            close=bool(position < 0.5),
            max_effort=float(max_effort_n),
        )
        self.write_message(topic, stamp_ns, msg)

    def write_scene(
        self,
        topic: str,
        stamp_ns: int,
        objects: Iterable[Mapping[str, Any]] = (),
        locations: Iterable[Mapping[str, Any]] = (),
        holding: str = "",
        frame_id: str = "base_link",
    ) -> None:
        """Scene from FORMAT.md entries (:mod:`vla_ros.scene_fields`: keys without a message field and
        an ``attributes`` dict become KeyValue strings; ``position`` is (x, y, z))."""
        t = self.types()

        def typed(fields: dict[str, Any]) -> dict[str, Any]:
            return {
                **fields,
                "position": t["geometry_msgs/msg/Point"](*fields["position"]),
                "attributes": [
                    t["diagnostic_msgs/msg/KeyValue"](key=k, value=v) for k, v in fields["attributes"]
                ],
            }

        objs = [t["vla_ros/msg/SceneObject"](**typed(object_fields(o))) for o in objects]
        locs = [t["vla_ros/msg/SceneLocation"](**typed(location_fields(loc))) for loc in locations]
        msg = t[SCENE_TYPE](
            header=self._header(stamp_ns, frame_id), objects=objs, locations=locs, holding=holding
        )
        self.write_message(topic, stamp_ns, msg)


# ----------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class TopicInfo:
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One deserialised message; ``timestamp_ns`` is the bag's receive time."""

    topic: str
    msgtype: str
    timestamp_ns: int
    msg: Any


@dataclass(frozen=True)
class TopicRequirement:
    """A topic the caller needs: ``role`` names it for the user ("camera"), ``msgtypes`` are accepted
    types (empty: any), ``option`` the setting that changes it (e.g. "--camera-topic")."""

    topic: str
    role: str
    msgtypes: tuple[str, ...] = ()
    option: str = ""


# Storage back ends fail on damaged files with many exception types (ReaderError, sqlite3 and apsw
# errors, struct errors, EOFError ...): any of them while opening or iterating means "damaged bag".
_DAMAGED_HINT = (
    "the file is truncated, damaged or not a rosbag2 (mcap or sqlite3); a recording cut off before it "
    "was closed can often be salvaged with `mcap recover` (mcap) or `ros2 bag reindex` (sqlite3)"
)


class BagReader:
    """Reads a rosbag2 directory, or a bare .mcap/.db3 file, into typed messages.

    Opening checks that the bag exists, is readable and is not empty; :meth:`require` checks topics.
    """

    def __init__(self, path: str | Path, msg_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.typestore = get_vla_typestore(msg_dir)
        self._reader: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self) -> BagReader:
        from rosbags.rosbag2 import Reader

        if not self.path.exists():
            raise BagNotFoundError(f"bag {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            files = sorted(p.name for p in self.path.iterdir())
            storage = [f for f in files if f.endswith((".mcap", ".db3"))]
            hint = (
                f"the recording was probably interrupted: run `ros2 bag reindex {self.path}` or pass the "
                f"storage file itself ({self.path / storage[0]})"
                if storage
                else "it holds no rosbag2 storage file (.mcap or .db3)"
            )
            raise BagNotFoundError(f"{self.path} has no metadata.yaml; {hint}")
        try:
            reader = Reader(self.path)
            reader.open()
        except Exception as exc:
            raise CorruptBagError(
                f"bag {self.path} cannot be opened ({type(exc).__name__}: {exc}); {_DAMAGED_HINT}"
            ) from exc
        self._reader = reader
        if reader.message_count == 0:
            self.close()
            raise EmptyBagError(f"bag {self.path} contains no messages; record some data or pick another bag")
        return self

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> Any:
        if self._reader is None:
            raise BagError(f"bag reader for {self.path} is not open; use it as a context manager")
        return self._reader

    # -- metadata --------------------------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, TopicInfo]:
        reader = self._require_open()
        out: dict[str, TopicInfo] = {}
        for conn in reader.connections:
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicInfo(conn.msgtype, count)
        return out

    @property
    def message_count(self) -> int:
        return int(self._require_open().message_count)

    @property
    def start_ns(self) -> int:
        return int(self._require_open().start_time)

    @property
    def end_ns(self) -> int:
        return int(self._require_open().end_time)

    def describe_topics(self) -> str:
        """Human-readable list of what the bag holds, for error messages."""
        topics = self.topics
        if not topics:
            return "no topics"
        return ", ".join(
            f"{name} ({info.msgtype}, {info.count} msgs)" for name, info in sorted(topics.items())
        )

    def require(self, requirements: Iterable[TopicRequirement]) -> None:
        """Raise :class:`MissingTopicsError` listing every unmet requirement and what the bag has."""
        topics = self.topics
        problems: list[str] = []
        for req in requirements:
            info = topics.get(req.topic)
            how = f" (set {req.option})" if req.option else ""
            if info is None:
                problems.append(f"{req.role} topic {req.topic} is missing{how}")
            elif req.msgtypes and info.msgtype not in req.msgtypes:
                problems.append(
                    f"{req.role} topic {req.topic} has type {info.msgtype}, expected one of "
                    f"{', '.join(req.msgtypes)}{how}"
                )
            elif info.count == 0:
                problems.append(f"{req.role} topic {req.topic} has no messages")
        if problems:
            raise MissingTopicsError(
                f"bag {self.path}: " + "; ".join(problems) + f". The bag has: {self.describe_topics()}"
            )

    # -- messages --------------------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Deserialised messages of ``topics`` (all if None) in receive-time order."""
        reader = self._require_open()
        wanted = None if topics is None else set(topics)
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        expected: dict[str, int] = {}
        for c in conns:
            expected[c.topic] = expected.get(c.topic, 0) + int(c.msgcount)
        seen = dict.fromkeys(expected, 0)
        it = reader.messages(connections=conns)
        while True:
            try:
                item = next(it)
            except StopIteration:
                short = {t: (seen[t], n) for t, n in expected.items() if seen[t] < n}
                if short:
                    detail = ", ".join(f"{t}: {got} of {n}" for t, (got, n) in sorted(short.items()))
                    raise CorruptBagError(
                        f"bag {self.path} ended early; messages read per topic vs. its metadata: {detail}; "
                        f"{_DAMAGED_HINT}"
                    ) from None
                return
            except Exception as exc:
                raise CorruptBagError(
                    f"bag {self.path}: reading stopped with {type(exc).__name__}: {exc}; {_DAMAGED_HINT}"
                ) from exc
            conn, timestamp, raw = item
            seen[conn.topic] += 1
            try:
                msg = self.typestore.deserialize_cdr(raw, conn.msgtype)
            except KeyError as exc:
                raise BagError(
                    f"bag {self.path}: topic {conn.topic} has type {conn.msgtype}, unknown to this reader"
                ) from exc
            except Exception as exc:
                raise CorruptBagError(
                    f"bag {self.path}: a {conn.msgtype} message on {conn.topic} at t={timestamp} ns "
                    f"cannot be decoded ({type(exc).__name__}: {exc}); the bag is damaged or was written "
                    "with a different message definition"
                ) from exc
            yield BagMessage(conn.topic, conn.msgtype, int(timestamp), msg)


def read_messages(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Convenience: open ``path``, yield its messages on ``topics``, close."""
    with BagReader(path) as reader:
        yield from reader.messages(topics)
