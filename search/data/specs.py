"""``--data`` specs: one parser for every command.

Grammar: ``FORMAT[:LOCATION][,KEY=VALUE...]``. Built-in benchmarks take no location
(``shapes:train=2000,seed=1``); file formats take a path (``mnist:DIR,train=10000``).

Formats (options and defaults are documented in each loader's module):

- ``shapes[,train=1500,val=400,test=400,canvas=96,distractors=4,seed=0]``: built-in benchmark.
- ``mnist:DIR[,train=N,val=5000,test=N,canvas=60,distractors=4,seed=0]``: cluttered MNIST
  digits from the IDX files in DIR (:mod:`search.data.mnist`).
- ``csv:FILE``, ``voc:DIR``, ``coco:FILE[,images=DIR]``, ``tfrecord:GLOB[,label_map=FILE]``
  (TensorFlow Object Detection API records) and ``folder:DIR`` (class sub-folders, no boxes):
  user data, all taking ``classes=a|b|c,min_size=0,max_side=256,val=0.15,test=0.15,seed=0``
  (:mod:`search.data.annotations`, :mod:`search.data.tfrecord`, :mod:`search.data.folder`).

The registry of formats is :mod:`search.data.loaders`.

Every located format also takes ``max_memory=GIB`` (decoded-canvas limit, default 4, or the
environment variable ``CROPSEARCH_MAX_MEMORY``) and ``cache=0`` (bypass the decode cache in
``$CROPSEARCH_CACHE``, default ``~/.cache/cropsearch``; see :mod:`search.data.cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from search.data.dataset import DataError, Dataset
from search.data.loaders import FORMATS
from search.safe_yaml import clip, shorten

#: Longest ``--data`` text quoted in a message.
_SHOWN = 120

#: Formats whose first argument is a file, folder or glob.
LOCATED_FORMATS = tuple(name for name, fmt in FORMATS.items() if fmt.located)


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
    shown = clip(text, _SHOWN)
    fmt, _, rest = text.strip().partition(":")
    if fmt not in FORMATS:
        raise DataError(
            f"--data '{shown}': unknown format '{clip(fmt)}' (known: {', '.join(FORMATS)})"
        )
    items = [item for item in rest.split(",") if item] if rest else []
    location = None
    if fmt in LOCATED_FORMATS:
        if not items or "=" in items[0]:
            raise DataError(f"--data '{shown}': format '{fmt}' needs a location, as {fmt}:PATH")
        location = items.pop(0)
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--data '{shown}': option '{clip(item)}' is not KEY=VALUE")
        if key.strip() in options:
            raise DataError(f"--data '{shown}': option '{clip(key.strip())}' is given twice")
        options[key.strip()] = value.strip()
    return DataSpec(fmt, location, options)


def option(
    spec: DataSpec,
    key: str,
    default: Any,
    kind: Callable[[str], Any] = int,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Typed option value, or ``default``; a bad value is a :class:`DataError`.

    Args:
        spec: the parsed spec.
        key: option name.
        default: value when the option is absent (not checked against the bounds).
        kind: converter from the text, e.g. ``int``, ``float``, ``str``.
        low: smallest allowed value (inclusive), if any.
        high: largest allowed value (inclusive), if any.
    """
    if key not in spec.options:
        return default
    shown = clip(str(spec), _SHOWN)
    try:
        value = kind(spec.options[key])
    except (ValueError, OverflowError):
        raise DataError(
            f"--data '{shown}': option {key}={shorten(spec.options[key])} is not a valid "
            f"{kind.__name__}"
        ) from None
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise DataError(f"--data '{shown}': option {key}={shorten(value)} is outside {bounds}")
    return value


def check_options(spec: DataSpec, known: tuple[str, ...]) -> None:
    """Reject options the format does not know."""
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise DataError(
            f"--data '{clip(str(spec), _SHOWN)}': unknown option(s) "
            f"{clip(', '.join(unknown))} for format '{spec.format}' (known: {', '.join(known)})"
        )


def load_dataset(spec: str | DataSpec) -> Dataset:
    """Load (or generate) the dataset a spec names."""
    parsed = parse_data_spec(spec) if isinstance(spec, str) else spec
    fmt = FORMATS[parsed.format]
    loader: Callable[[DataSpec], Dataset] = getattr(import_module(fmt.module), fmt.function)
    return loader(parsed)
