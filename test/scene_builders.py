"""Scene and result builders the disambiguation tests share: a part, a place, and the command a
resolution forwards. On the path through ``pythonpath = ["test"]`` (the suite imports in importlib mode)."""

from __future__ import annotations


def obj(oid: str, name: str, category: str, xy: tuple[float, float], **extra) -> dict:
    """A scene object at ``xy`` on the table (a part unless ``kind`` says otherwise)."""
    return {"id": oid, "name": name, "kind": extra.pop("kind", "part"), "category": category,
            "position": [*xy, 0.02], **extra}  # fmt: skip


def loc(lid: str, name: str, category: str, xy: tuple[float, float], **extra) -> dict:
    """A scene location at ``xy``."""
    return {"id": lid, "name": name, "category": category, "position": [*xy, 0.0], **extra}


def cmd(res) -> tuple:
    """What a resolution forwards: status, action, object and target."""
    return (res.status, res.action, res.object_id, res.target_id)
