"""Quaternion helpers shared by the controller, the dataset reader and the synthetic bags.

Quaternions are ``[x, y, z, w]`` (the ROS message order); rotation vectors are axis * angle in radians.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def quaternion_multiply(q1: Sequence[float], q2: Sequence[float]) -> np.ndarray:
    """Hamilton product ``q1 * q2``."""
    x1, y1, z1, w1 = q1
    x2, y2, z2, w2 = q2
    return np.array(
        [
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        ]
    )


def quaternion_from_rotation_vector(rotvec: Sequence[float]) -> np.ndarray:
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        # First-order expansion, normalised: exact enough and free of 0/0.
        return np.array([*(0.5 * rotvec), 1.0]) / math.sqrt(1.0 + 0.25 * angle * angle)
    axis = rotvec / angle
    return np.concatenate([axis * math.sin(angle / 2.0), [math.cos(angle / 2.0)]])


def rotation_vector_between(q_from_xyzw: Sequence[float], q_to_xyzw: Sequence[float]) -> np.ndarray:
    """Rotation vector (base frame) of the rotation taking orientation ``q_from`` to ``q_to``."""
    q0 = np.asarray(q_from_xyzw, dtype=np.float64)
    q1 = np.asarray(q_to_xyzw, dtype=np.float64)
    q0 = q0 / np.linalg.norm(q0)
    q1 = q1 / np.linalg.norm(q1)
    rel = quaternion_multiply(q1, q0 * np.array([-1.0, -1.0, -1.0, 1.0]))
    if rel[3] < 0:
        rel = -rel
    vec = rel[:3]
    norm = float(np.linalg.norm(vec))
    if norm < 1e-12:
        return 2.0 * vec  # small-angle limit
    return vec / norm * (2.0 * math.atan2(norm, rel[3]))


def quaternion_angle_rad(q1: Sequence[float], q2: Sequence[float]) -> float:
    """The rotation angle between two orientations, in [0, pi]."""
    dot = abs(float(np.dot(q1, q2)))
    return 2.0 * math.acos(min(dot, 1.0))
