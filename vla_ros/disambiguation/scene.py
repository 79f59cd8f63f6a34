"""What is in the workcell: the objects the operator can mean and the places they can go.

Plain dataclasses so that the resolver, the benchmark loader and the ROS node (which converts
`vla_ros/Scene` messages) share one representation. The dict layout is the one of
``shared/disambiguation/FORMAT.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_OBJECT_FIELDS = ("id", "name", "kind", "category", "color", "size", "material", "length_mm", "position")
_LOCATION_FIELDS = ("id", "name", "category", "role", "accepts", "position")


class SceneFormatError(ValueError):
    """A scene dict does not follow shared/disambiguation/FORMAT.md."""


def _position(value: Any, where: str) -> tuple[float, float, float]:
    if value is None:
        return (0.0, 0.0, 0.0)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) not in (2, 3):
        raise SceneFormatError(f"{where}.position must be [x, y] or [x, y, z] in metres, got {value!r}")
    try:
        xyz = [float(v) for v in value] + [0.0] * (3 - len(value))
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(f"{where}.position must hold numbers, got {value!r}") from exc
    if not all(math.isfinite(v) for v in xyz):
        raise SceneFormatError(f"{where}.position must be finite, got {value!r}")
    return (xyz[0], xyz[1], xyz[2])


def _text(value: Any, where: str, required: bool = False) -> str:
    if value is None:
        if required:
            raise SceneFormatError(f"{where} is required")
        return ""
    if not isinstance(value, (str, int, float)):
        raise SceneFormatError(f"{where} must be a string, got {type(value).__name__}")
    return str(value).strip()


@dataclass(frozen=True)
class SceneObject:
    """A movable thing: a part or a tool. ``size`` is relative to others of the same category."""

    id: str
    name: str = ""
    kind: str = ""
    category: str = ""
    color: str = ""
    size: str = ""
    material: str = ""
    length_mm: float | None = None
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "object") -> SceneObject:
        if not isinstance(data, Mapping):
            raise SceneFormatError(f"{where} must be a mapping, got {type(data).__name__}")
        oid = _text(data.get("id"), f"{where}.id", required=True)
        length = data.get("length_mm")
        if length is not None:
            try:
                length = float(length)
            except (TypeError, ValueError) as exc:
                raise SceneFormatError(f"{where}.length_mm must be a number, got {length!r}") from exc
        extra = {
            str(k): str(v)
            for k, v in data.items()
            if k not in _OBJECT_FIELDS and k != "attributes" and isinstance(v, (str, int, float))
        }
        if isinstance(data.get("attributes"), Mapping):
            extra.update({str(k): str(v) for k, v in data["attributes"].items()})
        return cls(
            id=oid,
            name=_text(data.get("name"), f"{where}.name") or oid,
            kind=_text(data.get("kind"), f"{where}.kind").lower(),
            category=_text(data.get("category"), f"{where}.category").lower(),
            color=_text(data.get("color"), f"{where}.color").lower(),
            size=_text(data.get("size"), f"{where}.size").lower(),
            material=_text(data.get("material"), f"{where}.material").lower(),
            length_mm=length,
            position=_position(data.get("position"), where),
            attributes=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "kind": self.kind, "category": self.category}
        for key in ("color", "size", "material"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.length_mm is not None:
            out["length_mm"] = self.length_mm
        out.update(self.attributes)
        out["position"] = list(self.position)
        return out


@dataclass(frozen=True)
class SceneLocation:
    """A place: bin, tray, rack, fixture, conveyor, station. ``accepts`` drives "put it away"."""

    id: str
    name: str = ""
    category: str = ""
    role: str = ""
    accepts: tuple[str, ...] = ()
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "location") -> SceneLocation:
        if not isinstance(data, Mapping):
            raise SceneFormatError(f"{where} must be a mapping, got {type(data).__name__}")
        accepts = data.get("accepts") or ()
        if isinstance(accepts, str):
            accepts = (accepts,)
        if not isinstance(accepts, Sequence):
            raise SceneFormatError(f"{where}.accepts must be a list of kinds or categories, got {accepts!r}")
        extra = {
            str(k): str(v)
            for k, v in data.items()
            if k not in _LOCATION_FIELDS and k != "attributes" and isinstance(v, (str, int, float))
        }
        if isinstance(data.get("attributes"), Mapping):
            extra.update({str(k): str(v) for k, v in data["attributes"].items()})
        lid = _text(data.get("id"), f"{where}.id", required=True)
        return cls(
            id=lid,
            name=_text(data.get("name"), f"{where}.name") or lid,
            category=_text(data.get("category"), f"{where}.category").lower(),
            role=_text(data.get("role"), f"{where}.role").lower(),
            accepts=tuple(str(a).strip().lower() for a in accepts if str(a).strip()),
            position=_position(data.get("position"), where),
            attributes=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "category": self.category}
        if self.role:
            out["role"] = self.role
        if self.accepts:
            out["accepts"] = list(self.accepts)
        out.update(self.attributes)
        out["position"] = list(self.position)
        return out


@dataclass(frozen=True)
class Scene:
    """The workcell now: objects, locations, and the id of the held object (None when empty)."""

    objects: tuple[SceneObject, ...] = ()
    locations: tuple[SceneLocation, ...] = ()
    holding: str | None = None

    def __post_init__(self) -> None:
        ids = [o.id for o in self.objects] + [loc.id for loc in self.locations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise SceneFormatError(f"scene ids must be unique; repeated: {', '.join(dupes)}")
        if self.holding is not None and self.holding not in {o.id for o in self.objects}:
            raise SceneFormatError(
                f"scene.holding is {self.holding!r} but no object has that id: add it to objects or set null"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scene:
        if not isinstance(data, Mapping):
            raise SceneFormatError(
                f"a scene must be a mapping with objects and locations, got {type(data).__name__}"
            )
        objects = data.get("objects") or []
        locations = data.get("locations") or []
        if any(not isinstance(v, Sequence) or isinstance(v, (str, bytes)) for v in (objects, locations)):
            raise SceneFormatError("scene.objects and scene.locations must be lists")
        holding = data.get("holding") or None
        return cls(
            objects=tuple(SceneObject.from_dict(o, f"objects[{i}]") for i, o in enumerate(objects)),
            locations=tuple(
                SceneLocation.from_dict(loc, f"locations[{i}]") for i, loc in enumerate(locations)
            ),
            holding=str(holding) if holding is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [o.to_dict() for o in self.objects],
            "locations": [loc.to_dict() for loc in self.locations],
            "holding": self.holding,
        }

    def object(self, object_id: str) -> SceneObject | None:
        return next((o for o in self.objects if o.id == object_id), None)

    def location(self, location_id: str) -> SceneLocation | None:
        return next((loc for loc in self.locations if loc.id == location_id), None)

    def entity(self, entity_id: str) -> SceneObject | SceneLocation | None:
        return self.object(entity_id) or self.location(entity_id)
