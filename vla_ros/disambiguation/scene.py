"""What is in the workcell: the objects the operator can mean and the places they can go.

Plain dataclasses so that the resolver, the benchmark loader and the ROS node (which converts
`vla_ros/Scene` messages) share one representation. The dict layout is the one of
``docs/disambiguation_format.md`` (``shared/disambiguation/FORMAT.md``).

``Scene.from_dict`` takes what programs build (positions may be missing or 2-D, ``kind`` free); a scene
*file* written by a person is held to the documented format (``strict=True``, what
:func:`load_scene_file` uses), so a typo is an error naming the file and the field rather than an empty
or silently different cell.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.errors import UserInputError

_OBJECT_FIELDS = ("id", "name", "kind", "category", "color", "size", "material", "length_mm", "position")
_LOCATION_FIELDS = ("id", "name", "category", "role", "accepts", "position")
_SCENE_FIELDS = ("objects", "locations", "holding")
OBJECT_KINDS = ("part", "tool")
# Attributes named with a unit ("diameter_mm", "mass_g", "capacity_mah") hold numbers.
NUMERIC_ATTRIBUTE_KEY = re.compile(r"_(?:mm|cm|m|g|kg|ml|l|n|nm|deg|v|mah|wh)$")
_FORMAT_DOC = "docs/disambiguation_format.md"


class SceneFormatError(UserInputError, ValueError):
    """A scene does not follow docs/disambiguation_format.md; the message names the field."""


def _shown(value: Any) -> str:
    """A value as the user wrote it (JSON spelling: "left", [1, 2], null), shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _position(value: Any, where: str, strict: bool) -> tuple[float, float, float]:
    field_name = f"{where}.position"
    if value is None:
        if strict:
            raise SceneFormatError(f"{field_name}: missing; give [x, y, z] in metres in the robot base frame")
        return (0.0, 0.0, 0.0)
    lengths = (3,) if strict else (2, 3)
    wanted = "3 numbers [x, y, z] in metres" if strict else "[x, y] or [x, y, z] in metres"
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) not in lengths:
        raise SceneFormatError(f"{field_name}: expected {wanted}, got {_shown(value)}")
    if strict and not all(_is_number(v) for v in value):
        raise SceneFormatError(f"{field_name}: expected {wanted}, got {_shown(value)}")
    try:
        xyz = [float(v) for v in value] + [0.0] * (3 - len(value))
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(f"{field_name}: expected numbers, got {_shown(value)}") from exc
    if not all(math.isfinite(v) for v in xyz):
        raise SceneFormatError(f"{field_name}: expected finite numbers, got {_shown(value)}")
    return (xyz[0], xyz[1], xyz[2])


def _text(value: Any, where: str, required: bool = False, strict: bool = False) -> str:
    if value is None or (required and isinstance(value, str) and not value.strip()):
        if required:
            raise SceneFormatError(f"{where}: missing; every entry needs a non-empty id")
        return ""
    if strict and not isinstance(value, str):
        # YAML reads `defect: no` as false and `thread: 8` as a number: ask for quotes.
        raise SceneFormatError(f"{where}: expected text, got {_shown(value)} (quote it in YAML)")
    if not isinstance(value, (str, int, float)):
        raise SceneFormatError(f"{where}: expected text, got {_shown(value)}")
    return str(value).strip()


def _number(value: Any, where: str, strict: bool) -> float:
    if strict and not _is_number(value):
        raise SceneFormatError(f"{where}: expected a number, got {_shown(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(f"{where}: expected a number, got {_shown(value)}") from exc
    if strict and not math.isfinite(number):
        raise SceneFormatError(f"{where}: expected a finite number, got {_shown(value)}")
    return number


def _attributes(data: Mapping[str, Any], known: tuple[str, ...], where: str, strict: bool) -> dict[str, str]:
    """Keys without a field of their own, then an explicit ``attributes`` mapping, as strings.

    Strict: a unit-named attribute (``mass_g``) must be a number and any other one text; lenient: values
    that are not scalars are dropped."""
    items = [(k, v, f"{where}.{k}") for k, v in data.items() if k not in known and k != "attributes"]
    nested = data.get("attributes")
    if nested is not None:
        if not isinstance(nested, Mapping):
            if strict:
                raise SceneFormatError(
                    f"{where}.attributes: expected a mapping of name: value, got {_shown(nested)}"
                )
        else:
            items += [(k, v, f"{where}.attributes.{k}") for k, v in nested.items()]
    extra: dict[str, str] = {}
    for key, value, field_name in items:
        if not strict:
            if isinstance(value, (str, int, float)) or field_name.startswith(f"{where}.attributes."):
                extra[str(key)] = str(value)
        elif NUMERIC_ATTRIBUTE_KEY.search(str(key)):
            _number(value, field_name, strict=True)
            extra[str(key)] = str(value)
        elif value is None:
            raise SceneFormatError(f"{field_name}: expected text, got null (leave the key out instead)")
        else:
            extra[str(key)] = _text(value, field_name, strict=True)
    return extra


def _name_or_category(data: Mapping[str, Any], where: str, strict: bool) -> tuple[str, str]:
    name = _text(data.get("name"), f"{where}.name", strict=strict)
    category = _text(data.get("category"), f"{where}.category", strict=strict).lower()
    if strict and not (name or category):
        raise SceneFormatError(f"{where}: needs a name or a category so the operator can refer to it")
    return name, category


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
    def from_dict(cls, data: Mapping[str, Any], where: str = "object", strict: bool = False) -> SceneObject:
        if not isinstance(data, Mapping):
            raise SceneFormatError(
                f"{where}: expected a mapping with id, name, kind, position, got {_shown(data)}"
            )
        oid = _text(data.get("id"), f"{where}.id", required=True, strict=strict)
        name, category = _name_or_category(data, where, strict)
        kind = _text(data.get("kind"), f"{where}.kind", strict=strict).lower()
        if strict and kind not in OBJECT_KINDS:
            raise SceneFormatError(
                f"{where}.kind: expected one of {', '.join(OBJECT_KINDS)}, got {_shown(data.get('kind'))}"
            )
        length = data.get("length_mm")
        return cls(
            id=oid,
            name=name or oid,
            kind=kind,
            category=category,
            color=_text(data.get("color"), f"{where}.color", strict=strict).lower(),
            size=_text(data.get("size"), f"{where}.size", strict=strict).lower(),
            material=_text(data.get("material"), f"{where}.material", strict=strict).lower(),
            length_mm=None if length is None else _number(length, f"{where}.length_mm", strict),
            position=_position(data.get("position"), where, strict),
            attributes=_attributes(data, _OBJECT_FIELDS, where, strict),
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
    def from_dict(
        cls, data: Mapping[str, Any], where: str = "location", strict: bool = False
    ) -> SceneLocation:
        if not isinstance(data, Mapping):
            raise SceneFormatError(
                f"{where}: expected a mapping with id, name, category, position, got {_shown(data)}"
            )
        lid = _text(data.get("id"), f"{where}.id", required=True, strict=strict)
        name, category = _name_or_category(data, where, strict)
        accepts = data.get("accepts")
        if accepts is None:
            accepts = ()
        elif isinstance(accepts, str) and not strict:
            accepts = (accepts,)
        if not isinstance(accepts, Sequence) or isinstance(accepts, str):
            raise SceneFormatError(
                f"{where}.accepts: expected a list of object kinds or categories, got {_shown(accepts)}"
            )
        accepted = tuple(
            _text(a, f"{where}.accepts[{i}]", strict=strict).lower() for i, a in enumerate(accepts)
        )
        return cls(
            id=lid,
            name=name or lid,
            category=category,
            role=_text(data.get("role"), f"{where}.role", strict=strict).lower(),
            accepts=tuple(a for a in accepted if a),
            position=_position(data.get("position"), where, strict),
            attributes=_attributes(data, _LOCATION_FIELDS, where, strict),
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
                f"holding: {self.holding!r} is not the id of an object: add it to objects or set null"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], strict: bool = False) -> Scene:
        """A scene from FORMAT.md's dict. ``strict``: exactly the documented format (what scene files
        are held to); otherwise missing positions are the origin, 2-D positions get z = 0 and unknown
        keys are ignored."""
        if not isinstance(data, Mapping):
            raise SceneFormatError(
                f"expected a scene: a mapping with objects, locations and holding, got {_shown(data)}"
            )
        if strict:
            for key in data:
                if key not in _SCENE_FIELDS:
                    raise SceneFormatError(
                        f"{key}: unknown field; a scene has {', '.join(_SCENE_FIELDS)} (see {_FORMAT_DOC})"
                    )
            for key in ("objects", "locations"):
                if key not in data:
                    raise SceneFormatError(f"{key}: missing; list the scene's {key} (an empty list if none)")
        entries = {}
        for key in ("objects", "locations"):
            value = data.get(key)
            if value is None and not strict:
                value = []
            if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
                raise SceneFormatError(f"{key}: expected a list, got {_shown(value)}")
            entries[key] = value
        objects = tuple(
            SceneObject.from_dict(o, f"objects[{i}]", strict) for i, o in enumerate(entries["objects"])
        )
        locations = tuple(
            SceneLocation.from_dict(loc, f"locations[{i}]", strict)
            for i, loc in enumerate(entries["locations"])
        )
        first_use: dict[str, str] = {}
        for where, entity in [
            *((f"objects[{i}]", o) for i, o in enumerate(objects)),
            *((f"locations[{i}]", loc) for i, loc in enumerate(locations)),
        ]:
            if entity.id in first_use:
                raise SceneFormatError(
                    f"{where}.id: {_shown(entity.id)} is already the id of {first_use[entity.id]}; "
                    "ids must be unique"
                )
            first_use[entity.id] = where
        holding = data.get("holding")
        if holding == "":
            holding = None
        if holding is not None:
            if strict and not isinstance(holding, str):
                raise SceneFormatError(f"holding: expected an object id or null, got {_shown(holding)}")
            holding = str(holding)
            if holding not in {o.id for o in objects}:
                raise SceneFormatError(
                    f"holding: {_shown(holding)} is not the id of an object: add it to objects or set null"
                )
        return cls(objects=objects, locations=locations, holding=holding)

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


def load_scene_file(path: str | Path) -> Scene:
    """A scene from a YAML or JSON file in the documented format, checked strictly.

    The file holds the scene itself, or a mapping with a ``scene`` key (a benchmark case). Every problem
    is a :class:`SceneFormatError` whose one line names the file and the field."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise SceneFormatError(f"{path} {what}: give a scene file (YAML or JSON, see {_FORMAT_DOC})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SceneFormatError(f"{path}: not a text file ({exc.reason}); a scene is YAML or JSON") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise SceneFormatError(f"{path}: not valid YAML/JSON{at}: {problem}") from exc
    if data is None:
        raise SceneFormatError(f"{path}: empty; a scene lists objects and locations (see {_FORMAT_DOC})")
    prefix = ""
    if isinstance(data, Mapping) and "scene" in data and "objects" not in data and "locations" not in data:
        data, prefix = data["scene"], "scene."
    try:
        return Scene.from_dict(data, strict=True)
    except SceneFormatError as exc:
        message = str(exc)
        if prefix and not message.startswith("expected"):
            message = prefix + message
        raise SceneFormatError(f"{path}: {message}") from exc
