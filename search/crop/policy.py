"""The crop policy: a frozen, validated, serializable value (no TensorFlow import)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from search.crop.kinds import KINDS, Kind
from search.safe_yaml import clip, shorten
from search.strict import Integer, Number

if TYPE_CHECKING:
    from search.crop.layer import PolicyCrop

Border = Literal["shift", "pad"]
Fit = Literal["stretch", "letterbox"]
Interpolation = Literal["bilinear", "nearest"]

#: Hard bounds of every numeric field (inclusive). The one place they live: the model's
#: constraints, the error messages and the search-space validation all read this table.
BOUNDS: dict[str, tuple[float, float]] = {
    "size": (8, 1024),
    "fraction": (0.05, 1.0),
    "aspect_ratio": (0.25, 4.0),
    "context": (-0.25, 2.0),
    "jitter": (0.0, 0.5),
    "min_object_covered": (0.0, 1.0),
    "box_noise": (0.0, 0.5),
}


class PolicyError(ValueError):
    """A policy field has a value outside its type or bounds."""


def _bounded(name: str, default: float) -> Any:
    low, high = BOUNDS[name]
    return Field(default, ge=low, le=high)


_SizeSide = Integer
_SIDE_OUT_OF_RANGE = "each side must be in [{}, {}]".format(*BOUNDS["size"])


class CropPolicy(BaseModel):
    """How an image is cropped before it reaches the network.

    ``kind`` picks the window; the numbers shape it. Every kind has a (possibly random) train
    behaviour and a deterministic eval behaviour; the output is always ``size`` = (height, width).
    Coordinates in and out are pixels ``(x_min, y_min, x_max, y_max)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind = "full"
    size: tuple[_SizeSide, _SizeSide] = (48, 48)
    fraction: Number = _bounded("fraction", 1.0)
    aspect_ratio: Number = _bounded("aspect_ratio", 1.0)
    context: Number = _bounded("context", 0.0)
    jitter: Number = _bounded("jitter", 0.0)
    min_object_covered: Number = _bounded("min_object_covered", 0.5)
    #: Train-time disturbance of the object box, as a detector's boxes are disturbed: the box
    #: centre moves by up to ``box_noise`` x its size and each side scales by up to
    #: ``exp(+-box_noise)`` (:func:`search.crop.geometry.disturb_boxes`). Measured mean IoU with the
    #: true box: 0.05 -> 0.90, 0.14 -> 0.75, 0.35 -> 0.50. Object kinds only; eval never
    #: disturbs the box.
    box_noise: Number = _bounded("box_noise", 0.0)
    border: Border = "shift"
    fit: Fit = "stretch"
    interpolation: Interpolation = "bilinear"

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as error:
            raise PolicyError(describe_validation_error(error)) from None

    @field_validator("size", mode="before")
    @classmethod
    def _square_size(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("size")
    @classmethod
    def _size_in_bounds(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = BOUNDS["size"]
        for side in value:
            if not low <= side <= high:
                raise ValueError(_SIDE_OUT_OF_RANGE)
        return value

    # -- serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) for YAML/JSON and MLflow params."""
        data = self.model_dump()
        data["size"] = list(self.size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropPolicy:
        """Build and validate a policy from plain data."""
        if not isinstance(data, dict):
            raise PolicyError(f"a policy must be a mapping of fields, got {type(data).__name__}")
        return cls(**data)

    def label(self) -> str:
        """Short human form naming the kind and the fields that matter for it."""
        kind = KINDS[self.kind]
        parts = [
            f"{name}={_short(getattr(self, name))}"
            for name in kind.fields
            if name != "box_noise"  # shown below, only when set
        ]
        if kind.needs_box and self.box_noise > 0:
            parts.append(f"box_noise={_short(self.box_noise)}")
        if kind.needs_box and self.border != "shift":
            parts.append(f"border={self.border}")
        if self.fit != "stretch":
            parts.append(f"fit={self.fit}")
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind

    # -- behaviour ---------------------------------------------------------------------------
    # Delegated to the modules that hold it, imported inside each method: the value imports no
    # behaviour (those modules import it), and loading a policy imports no TensorFlow (cut and
    # layer do).
    def windows(
        self,
        image_sizes: np.ndarray | Sequence[Sequence[int]],
        boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        training: bool = False,
        seed: int | None = None,
        epoch: int = 0,
        indices: np.ndarray | None = None,
    ) -> np.ndarray:
        """Crop windows in pixels, shape (N, 4) as ``(x_min, y_min, x_max, y_max)``.

        Args:
            image_sizes: (N, 2) image (height, width).
            boxes: (N, 4) object boxes in pixels; needed by the object kinds.
            training: train-mode windows (random kinds draw from ``seed``) or eval windows.
            seed: seed of train-mode randomness; None means 0.
            epoch: epoch number, so every epoch sees other random crops.
            indices: sample ids keying the randomness (default ``0..N-1``).
        """
        from search.crop.geometry import crop_windows

        return crop_windows(self, image_sizes, boxes, training, seed, epoch, indices)

    def apply(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        training: bool = False,
        seed: int | None = None,
        epoch: int = 0,
    ) -> np.ndarray:
        """Crop and resize a batch: uint8 (N, H, W, 3) or a list of arrays -> uint8 (N, h, w, 3).

        Imports TensorFlow on first use; the policy itself stays TF-free.
        """
        from search.crop.cut import apply_policy

        return apply_policy(self, images, boxes, training=training, seed=seed, epoch=epoch)

    def as_layer(
        self,
        box_format: Literal["xyxy", "rel_yxyx"] = "xyxy",
        train_crops: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> PolicyCrop:
        """This policy as a Keras layer ``(images, boxes) -> crops``, saved with its model.

        Eval windows at inference; with ``train_crops`` train-mode windows while the model
        trains. ``box_format``: ``xyxy`` pixels or ``rel_yxyx`` (TF's normalized
        ``[y_min, x_min, y_max, x_max]``). See :class:`search.crop.layer.PolicyCrop`.
        """
        from search.crop.layer import as_layer

        return as_layer(self, box_format, train_crops, seed, **kwargs)

    def tf_map(
        self,
        box_format: Literal["xyxy", "rel_yxyx"] = "xyxy",
        training: bool = False,
        seed: int | None = None,
        epoch: Any = 0,
    ) -> Callable[..., Any]:
        """A ``tf.data.Dataset.map`` function ``(image, box, label) -> (crop, label)``,
        batched or not; see :func:`search.crop.layer.tf_map`."""
        from search.crop.layer import tf_map

        return tf_map(self, box_format, training, seed, epoch)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


#: Pydantic error types that mean "a number outside its bounds" (``size`` raises value_error).
_RANGE_ERRORS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the field, the bad value and what is allowed."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "policy"
        value = item.get("input")
        out_of_range = item["type"] in _RANGE_ERRORS or _SIDE_OUT_OF_RANGE in item["msg"]
        if item["type"] == "extra_forbidden":
            known = ", ".join(CropPolicy.model_fields)
            lines.append(f"unknown policy field '{clip(field)}' (known: {known})")
        elif field in BOUNDS and out_of_range:
            low, high = BOUNDS[field]
            lines.append(
                f"policy field '{field}' = {shorten(value)} is outside the allowed range "
                f"[{low}, {high}]"
            )
        elif item["type"] == "literal_error":
            allowed = get_args(CropPolicy.model_fields[field].annotation)
            lines.append(
                f"policy field '{field}' = {shorten(value)} must be one of {', '.join(allowed)}"
            )
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"policy field '{clip(field)}' = {shorten(value)}: {message}")
        if len(lines) == 3:  # enough to act on; the rest after fixing these
            break
    return "; ".join(lines)
