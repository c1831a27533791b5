"""``--data`` specs: one parser for every command.

Grammar: ``FORMAT[:LOCATION][,KEY=VALUE...]``. Built-in benchmarks take no location
(``shapes:train=2000,seed=1``); file formats take a path (``mnist:DIR,train=10000``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from search.data.dataset import DataError, Dataset

#: Formats whose first argument is a file or folder.
LOCATED_FORMATS = ("mnist", "csv", "voc", "coco")


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value."""

    format: str
    location: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [self.location] if self.location else []
        parts += [f"{key}={value}" for key, value in self.options.items()]
        return f"{self.format}:{','.join(parts)}" if parts else self.format


def parse_data_spec(text: str) -> DataSpec:
    """Parse ``FORMAT[:LOCATION][,KEY=VALUE...]``; raise :class:`DataError` naming the problem."""
    fmt, _, rest = text.strip().partition(":")
    if fmt not in _LOADERS:
        raise DataError(f"--data '{text}': unknown format '{fmt}' (known: {', '.join(_LOADERS)})")
    items = [item for item in rest.split(",") if item] if rest else []
    location = None
    if fmt in LOCATED_FORMATS:
        if not items or "=" in items[0]:
            raise DataError(f"--data '{text}': format '{fmt}' needs a location, as {fmt}:PATH")
        location = items.pop(0)
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DataError(f"--data '{text}': option '{item}' is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return DataSpec(fmt, location, options)


def option(spec: DataSpec, key: str, default: Any, kind: Callable[[str], Any] = int) -> Any:
    """Typed option value, or ``default``; a bad value is a :class:`DataError`."""
    if key not in spec.options:
        return default
    try:
        return kind(spec.options[key])
    except ValueError:
        raise DataError(
            f"--data '{spec}': option {key}={spec.options[key]!r} is not a valid {kind.__name__}"
        ) from None


def check_options(spec: DataSpec, known: tuple[str, ...]) -> None:
    """Reject options the format does not know."""
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise DataError(
            f"--data '{spec}': unknown option(s) {', '.join(unknown)} for format '{spec.format}' "
            f"(known: {', '.join(known)})"
        )


def load_dataset(spec: str | DataSpec) -> Dataset:
    """Load (or generate) the dataset a spec names."""
    parsed = parse_data_spec(spec) if isinstance(spec, str) else spec
    return _LOADERS[parsed.format](parsed)


def _load_shapes(spec: DataSpec) -> Dataset:
    from search.data.shapes import load_shapes

    return load_shapes(spec)


_LOADERS: dict[str, Callable[[DataSpec], Dataset]] = {"shapes": _load_shapes}
