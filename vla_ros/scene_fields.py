"""Which vla_ros/Scene message field each key of a FORMAT.md scene entry fills, with no message library.

Two type systems build vla_ros/Scene messages: rclpy's generated classes in the nodes
(:mod:`vla_ros.nodes.scene_convert`) and the rosbags typestore when writing bags
(:meth:`vla_ros.data.bag.BagWriter.write_scene`). Both take their fields from here, so a scene a node
publishes and one recorded in a bag cannot drift apart. Keys the message has no field for travel as
``attributes`` (string pairs), as does an explicit ``attributes`` mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OBJECT_FIELDS = ("id", "name", "kind", "category", "color", "size", "material")
LOCATION_FIELDS = ("id", "name", "category", "role")
_STRUCTURED = ("position", "accepts", "length_mm", "attributes")


def position_xyz(position: Any) -> tuple[float, float, float]:
    """(x, y, z) in metres; missing coordinates are 0."""
    x, y, z = (float(v) for v in [*(position or ()), 0.0, 0.0, 0.0][:3])
    return x, y, z


def attribute_pairs(entry: Mapping[str, Any], known: tuple[str, ...]) -> list[tuple[str, str]]:
    """Scalar keys without a message field, then the entries of an ``attributes`` mapping."""
    skip = {*known, *_STRUCTURED}
    pairs = [(str(k), str(v)) for k, v in entry.items() if k not in skip and isinstance(v, (str, int, float))]
    if isinstance(entry.get("attributes"), Mapping):
        pairs += [(str(k), str(v)) for k, v in entry["attributes"].items()]
    return pairs


def object_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """SceneObject's fields; ``position`` as (x, y, z) and ``attributes`` as string pairs."""
    return {
        **{f: str(entry.get(f) or "") for f in OBJECT_FIELDS},
        "length_mm": float(entry.get("length_mm") or 0.0),
        "position": position_xyz(entry.get("position")),
        "attributes": attribute_pairs(entry, OBJECT_FIELDS),
    }


def location_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """SceneLocation's fields; ``position`` as (x, y, z) and ``attributes`` as string pairs."""
    return {
        **{f: str(entry.get(f) or "") for f in LOCATION_FIELDS},
        "accepts": [str(a) for a in entry.get("accepts") or ()],
        "position": position_xyz(entry.get("position")),
        "attributes": attribute_pairs(entry, LOCATION_FIELDS),
    }
