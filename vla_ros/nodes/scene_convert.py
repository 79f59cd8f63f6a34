"""vla_ros/Scene messages <-> scene dicts in shared/disambiguation/FORMAT.md's layout.

The workcell core (``Workcell.scene()``) and the disambiguation core (``Scene.from_dict``) speak the
FORMAT.md dict; only nodes see the message. Keys the message has no field for travel as
``attributes`` (KeyValue strings) and come back under an ``attributes`` mapping, which
``Scene.from_dict`` reads as extra attributes (so they can never overwrite id, name, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import Point

from vla_ros.msg import Scene, SceneLocation, SceneObject
from vla_ros.scene_fields import LOCATION_FIELDS, OBJECT_FIELDS, location_fields, object_fields


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    x, y, z = fields["position"]
    return {
        **fields,
        "position": Point(x=x, y=y, z=z),
        "attributes": [KeyValue(key=k, value=v) for k, v in fields["attributes"]],
    }


def scene_dict_to_msg(scene: Mapping[str, Any], stamp: Time, frame_id: str) -> Scene:
    """A FORMAT.md scene dict (objects, locations, holding) as a vla_ros/Scene message."""
    msg = Scene()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.objects = [SceneObject(**_typed(object_fields(obj))) for obj in scene.get("objects") or ()]
    msg.locations = [SceneLocation(**_typed(location_fields(loc))) for loc in scene.get("locations") or ()]
    msg.holding = str(scene.get("holding") or "")
    return msg


def scene_msg_to_dict(msg: Scene) -> dict[str, Any]:
    """The inverse of :func:`scene_dict_to_msg`: empty strings and a zero length become absent."""
    objects = []
    for obj in msg.objects:
        entry: dict[str, Any] = {f: getattr(obj, f) for f in OBJECT_FIELDS if getattr(obj, f)}
        if obj.length_mm:
            entry["length_mm"] = float(obj.length_mm)
        entry["position"] = [obj.position.x, obj.position.y, obj.position.z]
        if obj.attributes:
            entry["attributes"] = {kv.key: kv.value for kv in obj.attributes if kv.key}
        objects.append(entry)
    locations = []
    for loc in msg.locations:
        entry = {f: getattr(loc, f) for f in LOCATION_FIELDS if getattr(loc, f)}
        if loc.accepts:
            entry["accepts"] = list(loc.accepts)
        entry["position"] = [loc.position.x, loc.position.y, loc.position.z]
        if loc.attributes:
            entry["attributes"] = {kv.key: kv.value for kv in loc.attributes if kv.key}
        locations.append(entry)
    return {"objects": objects, "locations": locations, "holding": msg.holding or None}
