"""CropPolicy: bounds, error messages, serialization, and a TF-free import."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from search.crop.kinds import KINDS
from search.crop.policy import BOUNDS, CropPolicy, PolicyError


def _just_outside(name: str) -> list[Any]:
    low, high = BOUNDS[name]
    if name == "size":
        return [int(low) - 1, int(high) + 1, [int(low), int(high) + 1], [int(low) - 1, 48]]
    step = 1e-6 * max(1.0, abs(high - low))
    return [low - step, high + step]


@pytest.mark.parametrize("name", list(BOUNDS))
def test_every_bounded_field_rejects_values_just_outside(name: str) -> None:
    low, high = BOUNDS[name]
    for value in _just_outside(name):
        with pytest.raises(PolicyError) as error:
            CropPolicy(**{name: value})
        message = str(error.value)
        assert f"'{name}'" in message
        assert repr(value) in message
        assert f"[{low}, {high}]" in message
    for value in (low, high):
        CropPolicy(**{name: int(value) if name == "size" else value})


def test_unknown_field_bad_literal_and_bad_type_are_named() -> None:
    with pytest.raises(PolicyError, match=r"unknown policy field 'contxt'.*known: kind"):
        CropPolicy(contxt=0.1)
    for name, bad in (
        ("kind", "objects"),
        ("border", "wrap"),
        ("fit", "crop"),
        ("interpolation", "bicubic"),
    ):
        with pytest.raises(PolicyError, match=rf"'{name}' = '{bad}' must be one of"):
            CropPolicy(**{name: bad})
    with pytest.raises(PolicyError, match=r"'fraction' = 'abc': a text is not a number"):
        CropPolicy(fraction="abc")
    with pytest.raises(PolicyError) as error:
        CropPolicy(context=None)
    assert "'context'" in str(error.value) and "outside" not in str(error.value)
    with pytest.raises(PolicyError, match="a policy must be a mapping"):
        CropPolicy.from_dict([1, 2])  # type: ignore[arg-type]


def test_size_forms() -> None:
    assert CropPolicy(size=32).size == (32, 32)
    assert CropPolicy(size=[24, 40]).size == (24, 40)


@pytest.mark.parametrize("kind", list(KINDS))
def test_yaml_round_trip(kind: str) -> None:
    policy = CropPolicy(
        kind=kind,
        size=[40, 56],
        fraction=0.35,
        aspect_ratio=1.25,
        context=0.4,
        jitter=0.05,
        min_object_covered=0.7,
        border="pad",
        fit="letterbox",
        interpolation="nearest",
    )
    text = yaml.safe_dump(policy.to_dict())
    loaded = CropPolicy.from_dict(yaml.safe_load(text))
    assert loaded == policy
    assert loaded.to_dict() == policy.to_dict()


def test_policy_modules_stay_free_of_tensorflow() -> None:
    code = (
        "import sys, search.crop.policy, search.crop.geometry, search.space\n"
        "import search.results.export\n"
        "from search.crop.policy import CropPolicy\n"
        "CropPolicy(kind='object').windows([[10, 10]], [[1, 1, 5, 5]])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
