"""Number types for user-facing models: a boolean or a text is not a number.

Pydantic's lax mode reads ``context: true`` as 1.0 and ``"0.3"`` as 0.3; its strict mode refuses
an integer where a float is expected (``fraction: 1``). :data:`Number` and :data:`Integer` sit
between: any real number (numpy scalars included) is accepted, a boolean or a text is an error
that names the field.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, BeforeValidator


def _refuse_bool_and_text(value: Any) -> Any:
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy.bool_ too
        raise ValueError("a boolean is not a number")
    if isinstance(value, str | bytes):
        raise ValueError("a text is not a number (write it without quotes)")
    return value


Number = Annotated[float, BeforeValidator(_refuse_bool_and_text)]
"""A float field that accepts ints and floats, not booleans or texts."""

Integer = Annotated[int, BeforeValidator(_refuse_bool_and_text)]
"""An int field that accepts integral numbers, not booleans or texts."""


def bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """(lowest, highest) allowed value of a field, from its ``ge``/``le`` constraints (or None).

    The CLI reads its option bounds here, so a flag accepts exactly what the model accepts.
    """
    low = high = None
    for item in model.model_fields[name].metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
    return low, high
