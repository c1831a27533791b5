"""The table of crop kinds: what each kind is, apart from its window maths.

One row per kind. The policy (its label), the search spaces (their anchors), the numpy geometry
and the in-graph layer all read this table; their window functions are dispatched by the same
names (``search.crop.geometry.WINDOWS``, ``search.crop.graph.WINDOWS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

#: The kinds as a type; ``tests/test_crop_kinds.py`` checks it names exactly the rows of KINDS.
Kind = Literal["full", "center", "random", "random_resized", "object", "object_random"]


@dataclass(frozen=True)
class CropKind:
    """What one crop kind is.

    Attributes:
        name: the policy's ``kind`` value.
        fields: the policy fields that change its windows; the others are carried but ignored.
        convention: its setting familiar from other libraries, the anchor a search tries first.
        needs_box: whether its windows are built from an object box.
        random: whether its train windows are random whatever its numbers (``object`` is random
            only with ``jitter`` or ``box_noise``); eval windows never are.
    """

    name: str
    fields: tuple[str, ...]
    convention: Mapping[str, float]
    needs_box: bool = False
    random: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "convention", MappingProxyType(dict(self.convention)))


def _table(*rows: CropKind) -> dict[str, CropKind]:
    return {row.name: row for row in rows}


#: Every crop kind by name, in the order users see them. Conventions: timm's centre crop_pct
#: 0.875; torchvision's RandomResizedCrop area range (0.08, 1); the object box with a moderate
#: 20% context on each side, no jitter; Inception's ``sample_distorted_bounding_box`` (area from
#: 0.05, min_object_covered 0.1).
KINDS: dict[str, CropKind] = _table(
    CropKind("full", (), {}),
    CropKind(
        "center",
        ("fraction", "aspect_ratio"),
        {"fraction": 0.875, "aspect_ratio": 1.0},
    ),
    CropKind(
        "random",
        ("fraction", "aspect_ratio"),
        {"fraction": 0.875, "aspect_ratio": 1.0},
        random=True,
    ),
    CropKind(
        "random_resized",
        ("fraction", "aspect_ratio"),
        {"fraction": 0.08, "aspect_ratio": 1.0},
        random=True,
    ),
    CropKind(
        "object",
        ("context", "aspect_ratio", "jitter", "box_noise"),
        {"context": 0.2, "aspect_ratio": 1.0, "jitter": 0.0, "box_noise": 0.0},
        needs_box=True,
    ),
    CropKind(
        "object_random",
        ("fraction", "min_object_covered", "context", "aspect_ratio", "box_noise"),
        {
            "fraction": 0.05,
            "min_object_covered": 0.1,
            "context": 0.2,
            "aspect_ratio": 1.0,
            "box_noise": 0.0,
        },
        needs_box=True,
        random=True,
    ),
)

#: The kinds that need object boxes.
OBJECT_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.needs_box)
#: The kinds whose train windows are random whatever their numbers.
RANDOM_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.random)
