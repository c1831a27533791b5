"""Search spaces as data (``spaces/*.yaml``): load, validate, and sample with Optuna or
translate to keras-tuner.

This module is the only place that calls ``trial.suggest_*``; keras-tuner's ``hp.*`` is spoken
by :mod:`search.engines.keras_tuner_space`, so that loading a space never imports TensorFlow. A
space file uses Optuna's short form per parameter, plus ``when:`` for conditional parameters
and ``fixed:`` for values not searched::

    fixed:
      size: [48, 48]
    params:
      kind: {type: categorical, choices: [full, center, object]}
      context: {type: float, low: 0.0, high: 1.0, when: {kind: [object]}}
      learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}

Parameters are policy fields (:class:`search.crop.policy.CropPolicy`) or training fields
(``learning_rate``, ``width``, ``depth``, ``batch_size``); every range is checked against the
bounds of the field it sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from search.crop.kinds import KINDS, OBJECT_KINDS
from search.crop.policy import CropPolicy, PolicyError
from search.safe_yaml import YamlFileError, clip, load_yaml_file, shorten
from search.settings import SEARCHABLE_TRAIN_FIELDS, TrainConfig
from search.strict import Integer, Number

if TYPE_CHECKING:
    import optuna

TRAIN_FIELDS = SEARCHABLE_TRAIN_FIELDS
POLICY_FIELDS = tuple(CropPolicy.model_fields)

Condition = dict[str, list[Any]]

#: The crop kinds that need no box (usable on box-free data).
BOX_FREE_KINDS = tuple(kind for kind in KINDS if kind not in OBJECT_KINDS)


def shipped_space(name: str) -> Path:
    """The space file ``name`` (``spaces/default.yaml``) in the working directory, else the
    one shipped beside the package."""
    local = Path(name)
    return local if local.exists() else Path(__file__).resolve().parents[1] / name


#: The largest ``box_noise`` a search for disturbed boxes tries by default: mean IoU ~0.45.
BOX_NOISE_HIGH = 0.4


class SpaceError(ValueError):
    """A space file is malformed or asks for values outside the fields' bounds."""


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: Condition | None = Field(
        None, description="Sample only when each named earlier parameter has one of these values."
    )


class FloatParam(_Param):
    """``{type: float, low, high, log, step}``: a float in [low, high]."""

    type: Literal["float"]
    low: Number
    high: Number
    log: StrictBool = False
    step: Number | None = None


class IntParam(_Param):
    """``{type: int, low, high, log, step}``: an integer in [low, high]."""

    type: Literal["int"]
    low: Integer
    high: Integer
    log: StrictBool = False
    step: Integer = 1


class CategoricalParam(_Param):
    """``{type: categorical, choices}``: one of the choices."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool | list[int]] = Field(min_length=1)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SpaceFile(BaseModel):
    """The schema of a ``spaces/*.yaml`` file."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    fixed: dict[str, Any] = Field(default_factory=dict, description="Values not searched.")
    params: dict[str, Param] = Field(description="Searched parameters, sampled in file order.")


def space_json_schema() -> dict[str, Any]:
    """JSON Schema of space files (shipped as ``spaces/space.schema.json``)."""
    schema = SpaceFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cropsearch search space"
    return schema


def _check_value(source: str, name: str, value: Any) -> None:
    """Raise :class:`SpaceError` when ``name`` cannot take ``value``."""
    if name in TRAIN_FIELDS:
        try:
            TrainConfig(**{name: value})
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise SpaceError(
                f"{source}: parameter '{name}' = {shorten(value)}: {message}"
            ) from None
        return
    try:
        CropPolicy(**{name: value})
    except PolicyError as error:
        raise SpaceError(f"{source}: parameter '{name}': {error}") from None


#: Fields that take whole numbers: a ``type: float`` range would hand them fractions.
INTEGER_FIELDS = (
    "size",
    *(name for name in TRAIN_FIELDS if TrainConfig.model_fields[name].annotation is int),
)


def _check_range(source: str, name: str, param: FloatParam | IntParam) -> None:
    """Refuse what Optuna would refuse only when the first trial samples the parameter."""
    import optuna

    if isinstance(param, FloatParam) and name in INTEGER_FIELDS:
        raise SpaceError(f"{source}: parameter '{name}' takes whole numbers: use type: int")
    try:
        if isinstance(param, FloatParam):
            optuna.distributions.FloatDistribution(param.low, param.high, param.log, param.step)
        else:
            optuna.distributions.IntDistribution(param.low, param.high, param.log, param.step)
    except ValueError as error:
        raise SpaceError(f"{source}: parameter '{name}': {clip(str(error), 200)}") from None


class Space:
    """A validated search space; :meth:`sample` draws one configuration from an Optuna trial."""

    def __init__(
        self, spec: SpaceFile, source: str = "<space>", matched_noise: float | None = None
    ) -> None:
        self.spec, self.source = spec, source
        #: The ``box_noise`` matched to the boxes at inference: one more object anchor.
        self.matched_noise = matched_noise
        known = POLICY_FIELDS + TRAIN_FIELDS
        seen: set[str] = set()
        for name, value in spec.fixed.items():
            if name not in known:
                raise SpaceError(
                    f"{source}: fixed '{clip(name)}' is not a policy or training field"
                )
            _check_value(source, name, value)
        for name, param in spec.params.items():
            if name not in known:
                raise SpaceError(
                    f"{source}: parameter '{clip(name)}' is not a policy or training field "
                    f"(known: {', '.join(known)})"
                )
            if name in spec.fixed:
                raise SpaceError(f"{source}: parameter '{name}' is both fixed and searched")
            values = (
                param.choices if isinstance(param, CategoricalParam) else [param.low, param.high]
            )
            if not isinstance(param, CategoricalParam) and param.low > param.high:
                raise SpaceError(
                    f"{source}: parameter '{name}': low={param.low} > high={param.high}"
                )
            if not isinstance(param, CategoricalParam):
                _check_range(source, name, param)
            for value in values:
                _check_value(source, name, value)
            for other, allowed in (param.when or {}).items():
                if other not in seen and other not in spec.fixed:
                    raise SpaceError(
                        f"{source}: parameter '{name}': 'when' names '{clip(other)}', which is not "
                        "a fixed value or a parameter listed before it"
                    )
                for value in allowed:  # a typo here would silently never sample the parameter
                    _check_value(source, other, value)
            seen.add(name)

    @classmethod
    def load(cls, path: str | Path) -> Space:
        """Read and validate a space file; errors name the file and the parameter."""
        source = clip(str(path))
        try:
            raw = load_yaml_file(path, "space file")
        except YamlFileError as error:
            raise SpaceError(str(error)) from None
        if not isinstance(raw, dict):
            raise SpaceError(f"{source}: a space file must be a mapping with 'params'")
        try:
            spec = SpaceFile.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = clip(".".join(str(part) for part in first["loc"]))
            message = first["msg"].removeprefix("Value error, ")
            raise SpaceError(f"{source}: {where}: {message}") from None
        return cls(spec, source)

    @property
    def name(self) -> str:
        """The file's stem (``default`` for ``spaces/default.yaml``)."""
        return Path(self.source).stem

    def sample(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Suggest every active parameter; return them with the fixed values."""
        values: dict[str, Any] = dict(self.spec.fixed)
        for name, param in self.spec.params.items():
            if param.when and not all(
                values.get(k) in allowed for k, allowed in param.when.items()
            ):
                continue
            if isinstance(param, FloatParam):
                values[name] = trial.suggest_float(
                    name, param.low, param.high, log=param.log, step=param.step
                )
            elif isinstance(param, IntParam):
                values[name] = trial.suggest_int(
                    name, param.low, param.high, log=param.log, step=param.step
                )
            else:
                values[name] = trial.suggest_categorical(name, choice_values(param.choices))
                if isinstance(values[name], str) and values[name].startswith("["):
                    values[name] = json.loads(values[name])
        return values

    def grid(self) -> dict[str, list[Any]]:
        """Every parameter's values, for Optuna's grid search: a float parameter needs a
        ``step`` (its grid is ``low, low + step, ..., high``); an int's grid is its steps."""
        found: dict[str, list[Any]] = {}
        for name, param in self.spec.params.items():
            if isinstance(param, CategoricalParam):
                found[name] = choice_values(param.choices)
                continue
            if param.step is None:
                raise SpaceError(
                    f"{self.source}: parameter '{name}': grid search needs a step (e.g. step: 0.1)"
                )
            count = round((param.high - param.low) / param.step) + 1
            points = [param.low + i * param.step for i in range(count)]
            points = [p for p in points if p <= param.high + 1e-12]
            found[name] = (
                [int(p) for p in points]
                if isinstance(param, IntParam)
                else [round(float(p), 10) for p in points]
            )
        return found

    def values_from(self, chosen: Mapping[str, Any]) -> dict[str, Any]:
        """A configuration from keras-tuner's chosen values (``hp.values``): the fixed
        values, then each parameter whose ``when:`` holds, in file order (as :meth:`sample`)."""
        values: dict[str, Any] = dict(self.spec.fixed)
        for name, param in self.spec.params.items():
            if param.when and not all(
                values.get(k) in allowed for k, allowed in param.when.items()
            ):
                continue
            value = chosen[name]
            if isinstance(param, CategoricalParam) and isinstance(value, str):
                value = json.loads(value) if value.startswith("[") else value
            values[name] = value
        return values

    def baseline(self) -> dict[str, Any]:
        """The comparison every study contains: the full image, with the space's fixed values."""
        return {**self.spec.fixed, "kind": "full"}

    def kinds(self) -> tuple[str, ...]:
        """The crop kinds this space can produce, the baseline's ``full`` included."""
        found = {"full", str(self.spec.fixed.get("kind", "full"))}
        param = self.spec.params.get("kind")
        if isinstance(param, CategoricalParam):
            found.update(str(choice) for choice in param.choices)
        return tuple(kind for kind in KINDS if kind in found)

    def object_kinds(self) -> tuple[str, ...]:
        """The kinds this space can produce that need object boxes (none on box-free data)."""
        return tuple(kind for kind in self.kinds() if kind in OBJECT_KINDS)

    def conventions(self) -> list[dict[str, Any]]:
        """One configuration per searched kind other than ``full``, at the setting users know
        (the kind's ``convention`` in :data:`search.crop.kinds.KINDS`, else the field's
        default), moved into the space's range: the anchors a search tries before its sampler
        explores."""
        kind = self.spec.params.get("kind")
        if not isinstance(kind, CategoricalParam):
            return []
        found = []
        for choice in kind.choices:
            if choice == "full":
                continue
            values: dict[str, Any] = {**self.spec.fixed, "kind": choice}
            for name, param in self.spec.params.items():
                if name == "kind" or (
                    param.when
                    and not all(values.get(k) in allowed for k, allowed in param.when.items())
                ):
                    continue
                values[name] = _conventional(name, param, KINDS[str(choice)].convention)
            found.append({k: v for k, v in values.items() if k in self.spec.params})
        if self.matched_noise is not None and "box_noise" in self.spec.params:
            anchor = next((a for a in found if a["kind"] == "object"), None)
            if anchor is not None:
                found.append({**anchor, "box_noise": self.matched_noise})
        return found

    def with_box_noise(self, matched: float | None) -> Space:
        """This space also searching ``box_noise`` (0 to :data:`BOX_NOISE_HIGH`) for the
        object kinds, with one more object anchor trained at ``matched`` noise: for a search
        that chooses for disturbed boxes. Unchanged when it already searches ``box_noise``,
        fixes it, or has no object kind."""
        objects = [kind for kind in self.object_kinds() if kind != "full"]
        if not objects or "box_noise" in self.spec.params or "box_noise" in self.spec.fixed:
            return self
        high = max(BOX_NOISE_HIGH, matched or 0.0)
        param = FloatParam(type="float", low=0.0, high=high, when={"kind": objects})
        spec = self.spec.model_copy(update={"params": {**self.spec.params, "box_noise": param}})
        noise = None if matched is None else round(min(matched, high), 4)
        return Space(spec, self.source, noise)


def _conventional(name: str, param: Any, conventions: Mapping[str, Any]) -> Any:
    """The conventional (else default) value of ``name``, moved into ``param``'s range."""
    if name in conventions:
        value = conventions[name]
    elif name in CropPolicy.model_fields:
        value = CropPolicy.model_fields[name].default
    else:
        value = TrainConfig.model_fields[name].default
    if isinstance(param, CategoricalParam):
        options = choice_values(param.choices)
        wanted = json.dumps(value) if isinstance(value, list | tuple) else value
        return wanted if wanted in options else options[0]
    value = min(max(value, param.low), param.high)
    if param.step:
        value = param.low + round((value - param.low) / param.step) * param.step
        value = min(round(value, 10), param.high)
    return round(value) if isinstance(param, IntParam) else float(value)


def scalar(value: Any) -> Any:
    """A value as keras-tuner and Optuna hold it: lists (a ``size``) as JSON strings."""
    return json.dumps(value) if isinstance(value, list | tuple) else value


def choice_values(choices: list[Any]) -> list[Any]:
    """Optuna and keras-tuner choices must be scalars."""
    return [scalar(c) for c in choices]


def split_values(values: dict[str, Any], base: TrainConfig) -> tuple[CropPolicy, TrainConfig]:
    """Space values -> (the crop policy, ``base`` with the searched training fields set)."""
    policy = CropPolicy(**{k: v for k, v in values.items() if k in POLICY_FIELDS})
    train = base.model_copy(update={k: v for k, v in values.items() if k in TRAIN_FIELDS})
    return policy, train
