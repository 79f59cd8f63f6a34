"""Seeded workcell layouts: which parts and target regions are on the table, and where.

Pure numpy, no physics: the layout is decided here and the :class:`~vla_ros.sim.workcell.Workcell`
only builds it. Keeping the catalogue small and the colours distinct is deliberate: a small network
trained to imitate the expert on a CPU must be able to tell the parts apart from a 224x224 image, and
an instruction such as "put the red gear in the reject bin" must name exactly one part and one region.

Frame: the robot base frame of shared/disambiguation/FORMAT.md (metres, +x away from the robot,
+y to its left, +z up); the table top is the plane z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Part colours: saturated and far apart in hue so that one name picks one part.
PART_COLORS_RGBA: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.10, 0.10, 1.0),
    "green": (0.10, 0.65, 0.20, 1.0),
    "blue": (0.10, 0.30, 0.90, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "orange": (1.00, 0.50, 0.00, 1.0),
    "purple": (0.55, 0.20, 0.75, 1.0),
}

SIZES = ("small", "medium", "large")

# Per category and size: the collision geometry. ``radius_m``/``height_m`` for upright round parts (hex
# nut, gear disc), ``radius_m``/``length_m`` for bolts (a hexagonal shaft lying along x: it cannot roll,
# and standing bolts would be struck by the hand body when pushed), ``half_extents_m`` for boxes.
# Every part fits the Panda gripper's 8 cm opening across the fingers' axis (world y with the gripper
# pointing down) and is at most 3 cm tall, below the hand body when the fingertips touch the table.
PART_CATALOGUE: dict[str, dict[str, dict]] = {
    "bolt": {
        "small": {"shape": "hex_bar", "radius_m": 0.010, "length_m": 0.050, "mass_kg": 0.03},
        "medium": {"shape": "hex_bar", "radius_m": 0.011, "length_m": 0.060, "mass_kg": 0.04},
        "large": {"shape": "hex_bar", "radius_m": 0.012, "length_m": 0.070, "mass_kg": 0.05},
    },
    "nut": {
        "small": {"shape": "hex", "radius_m": 0.014, "height_m": 0.022, "mass_kg": 0.03},
        "medium": {"shape": "hex", "radius_m": 0.017, "height_m": 0.024, "mass_kg": 0.04},
        "large": {"shape": "hex", "radius_m": 0.020, "height_m": 0.026, "mass_kg": 0.05},
    },
    "gear": {
        "small": {"shape": "cylinder", "radius_m": 0.020, "height_m": 0.022, "mass_kg": 0.04},
        "medium": {"shape": "cylinder", "radius_m": 0.025, "height_m": 0.022, "mass_kg": 0.05},
        "large": {"shape": "cylinder", "radius_m": 0.030, "height_m": 0.022, "mass_kg": 0.06},
    },
    "bracket": {
        "small": {"shape": "box", "half_extents_m": (0.025, 0.012, 0.012), "mass_kg": 0.04},
        "medium": {"shape": "box", "half_extents_m": (0.030, 0.014, 0.013), "mass_kg": 0.05},
        "large": {"shape": "box", "half_extents_m": (0.035, 0.016, 0.014), "mass_kg": 0.06},
    },
}

# Target regions. ``preposition`` is how an instruction places a part there.
LOCATION_CATALOGUE: tuple[dict, ...] = (
    {
        "id": "bin_reject",
        "name": "reject bin",
        "category": "bin",
        "role": "reject",
        "accepts": [],
        "preposition": "in",
        "rgba": (0.25, 0.25, 0.25, 1.0),
    },
    {
        "id": "tray_storage",
        "name": "parts tray",
        "category": "tray",
        "role": "storage",
        "accepts": ["bolt", "nut"],
        "preposition": "in",
        "rgba": (0.55, 0.75, 0.80, 1.0),
    },
    {
        "id": "station_inspection",
        "name": "inspection station",
        "category": "station",
        "role": "inspection",
        "accepts": [],
        "preposition": "on",
        "rgba": (0.95, 0.95, 0.95, 1.0),
    },
    {
        "id": "fixture_assembly",
        "name": "assembly fixture",
        "category": "fixture",
        "role": "",
        "accepts": ["gear", "bracket"],
        "preposition": "on",
        "rgba": (0.55, 0.38, 0.22, 1.0),
    },
)

# Where target regions may go (centre x, y) and where parts may be scattered.
LOCATION_SLOTS_M: tuple[tuple[float, float], ...] = ((0.42, 0.27), (0.42, -0.27), (0.72, 0.0))
LOCATION_SLOT_JITTER_M = 0.02
LOCATION_HALF_SIZE_M = 0.06
PART_AREA_MIN_M = (0.36, -0.15)
PART_AREA_MAX_M = (0.60, 0.15)
PART_MIN_SEPARATION_M = 0.09


@dataclass
class PartSpec:
    """One part as laid out: its FORMAT.md attributes plus the geometry to build it."""

    id: str
    name: str
    category: str
    color: str
    size: str
    xy_m: tuple[float, float]
    yaw_rad: float
    geometry: dict
    kind: str = "part"

    @property
    def height_m(self) -> float:
        if self.geometry["shape"] == "box":
            return 2.0 * self.geometry["half_extents_m"][2]
        if self.geometry["shape"] == "hex_bar":
            return float(np.sqrt(3.0) * self.geometry["radius_m"])  # lying on a flat face
        return self.geometry["height_m"]

    @property
    def footprint_radius_m(self) -> float:
        """Radius of a circle containing the part seen from above (for spacing and pushing)."""
        if self.geometry["shape"] == "box":
            hx, hy, _ = self.geometry["half_extents_m"]
            return float(np.hypot(hx, hy))
        if self.geometry["shape"] == "hex_bar":
            return float(np.hypot(self.geometry["length_m"] / 2.0, self.geometry["radius_m"]))
        return self.geometry["radius_m"]

    @property
    def length_mm(self) -> float:
        if self.geometry["shape"] == "box":
            return round(2000.0 * self.geometry["half_extents_m"][0], 1)
        if self.geometry["shape"] == "hex_bar":
            return round(1000.0 * self.geometry["length_m"], 1)
        return round(2000.0 * self.geometry["radius_m"], 1)


@dataclass
class LocationSpec:
    """One target region: a flat square on the table, FORMAT.md attributes included."""

    id: str
    name: str
    category: str
    role: str
    accepts: list[str]
    preposition: str
    rgba: tuple[float, float, float, float]
    xy_m: tuple[float, float]
    half_size_m: float = LOCATION_HALF_SIZE_M


@dataclass
class Layout:
    parts: list[PartSpec] = field(default_factory=list)
    locations: list[LocationSpec] = field(default_factory=list)

    def part(self, part_id: str) -> PartSpec:
        for part in self.parts:
            if part.id == part_id:
                return part
        raise KeyError(f"no part {part_id!r} in this layout; parts are {[p.id for p in self.parts]}")

    def location(self, location_id: str) -> LocationSpec:
        for location in self.locations:
            if location.id == location_id:
                return location
        raise KeyError(
            f"no location {location_id!r} in this layout; locations are {[loc.id for loc in self.locations]}"
        )


def sample_layout(
    rng: np.random.Generator,
    num_parts: tuple[int, int] = (2, 3),
    num_locations: tuple[int, int] = (2, 3),
) -> Layout:
    """Draw parts (distinct colours) and target regions (distinct slots) from ``rng``.

    ``num_parts``/``num_locations`` are inclusive ranges. Deterministic for a given generator state.
    """
    n_parts = int(rng.integers(num_parts[0], num_parts[1] + 1))
    n_locations = int(rng.integers(num_locations[0], num_locations[1] + 1))
    if n_locations > len(LOCATION_SLOTS_M):
        raise ValueError(f"at most {len(LOCATION_SLOTS_M)} locations fit the table, asked for {n_locations}")

    colors = list(PART_COLORS_RGBA)
    categories = list(PART_CATALOGUE)
    chosen_colors = rng.choice(len(colors), size=n_parts, replace=False)
    parts: list[PartSpec] = []
    placed_xy: list[np.ndarray] = []
    for color_index in chosen_colors:
        color = colors[int(color_index)]
        category = categories[int(rng.integers(len(categories)))]
        size = SIZES[int(rng.integers(len(SIZES)))]
        xy = _free_xy(rng, placed_xy)
        placed_xy.append(xy)
        # Long parts keep their long side near x so that the fingers (closing along y) grasp the short side.
        elongated = PART_CATALOGUE[category][size]["shape"] in ("box", "hex_bar")
        yaw = float(rng.uniform(-0.2, 0.2)) if elongated else float(rng.uniform(-np.pi, np.pi))
        parts.append(
            PartSpec(
                id=f"{category}_{color}",
                name=f"{color} {category}",
                category=category,
                color=color,
                size=size,
                xy_m=(float(xy[0]), float(xy[1])),
                yaw_rad=yaw,
                geometry=dict(PART_CATALOGUE[category][size]),
            )
        )

    location_indices = rng.choice(len(LOCATION_CATALOGUE), size=n_locations, replace=False)
    slot_indices = rng.choice(len(LOCATION_SLOTS_M), size=n_locations, replace=False)
    locations = []
    for loc_index, slot_index in zip(location_indices, slot_indices, strict=True):
        template = dict(LOCATION_CATALOGUE[int(loc_index)])
        slot = np.asarray(LOCATION_SLOTS_M[int(slot_index)])
        xy = slot + rng.uniform(-LOCATION_SLOT_JITTER_M, LOCATION_SLOT_JITTER_M, size=2)
        locations.append(
            LocationSpec(
                id=template["id"],
                name=template["name"],
                category=template["category"],
                role=template["role"],
                accepts=list(template["accepts"]),
                preposition=template["preposition"],
                rgba=template["rgba"],
                xy_m=(float(xy[0]), float(xy[1])),
            )
        )
    return Layout(parts=parts, locations=locations)


def _free_xy(rng: np.random.Generator, placed_xy: list[np.ndarray]) -> np.ndarray:
    low, high = np.asarray(PART_AREA_MIN_M), np.asarray(PART_AREA_MAX_M)
    for _ in range(1000):
        xy = rng.uniform(low, high)
        if all(np.linalg.norm(xy - other) >= PART_MIN_SEPARATION_M for other in placed_xy):
            return xy
    raise RuntimeError("could not place parts apart on the table: lower num_parts or PART_MIN_SEPARATION_M")
