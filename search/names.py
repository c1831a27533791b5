"""Study names: one rule, checked before anything is created.

A study name becomes an Optuna study, an MLflow experiment and the folder of its artifacts
(``mlruns/artifacts/<name>``), so it must be a plain folder name: letters, digits, ``.``, ``_``
and ``-``, at most :data:`MAX_LENGTH` characters, not starting with ``.`` or ``-``. Such a name
cannot leave the store's folder (no ``/``, no ``..``) and fits every store's column.
"""

from __future__ import annotations

import re

from search.safe_yaml import clip

MAX_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


class StudyNameError(ValueError):
    """A study name breaks the rule."""


def check_study_name(name: str) -> str:
    """Return ``name`` when it is a valid study name, else raise :class:`StudyNameError`."""
    if len(name) > MAX_LENGTH:
        raise StudyNameError(
            f"study name '{clip(name, 40)}' has {len(name)} characters; at most {MAX_LENGTH}"
        )
    if not _NAME.fullmatch(name):
        raise StudyNameError(
            f"study name '{clip(name)}' may only hold letters, digits, '.', '_' and '-', and "
            "may not start with '.' or '-'"
        )
    return name


def safe_name(text: str) -> str:
    """A valid study name made from any text (for generated names): unsafe runs become ``-``.

    ``"shapes-my space"`` -> ``"shapes-my-space"``; ``"../x"`` -> ``"x"``.
    """
    name = _UNSAFE_RUN.sub("-", text).lstrip(".-")[:MAX_LENGTH].rstrip(".-")
    return name or "study"
