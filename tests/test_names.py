"""Study names: the one rule, and a safe name made from any text."""

from __future__ import annotations

import pytest

from search.names import MAX_LENGTH, StudyNameError, check_study_name, safe_name


@pytest.mark.parametrize("name", ["tiny", "shapes-default-20260101-120000", "a.b_c-1", "x" * 100])
def test_valid_study_names(name: str) -> None:
    assert check_study_name(name) == name


@pytest.mark.parametrize(
    "text", ["../../x", "my space", "", "...", "é", "a/b\\c", "-x", "s" * 600, "\n"]
)
def test_safe_name_always_makes_a_valid_name(text: str) -> None:
    name = safe_name(text)
    assert check_study_name(name) == name and len(name) <= MAX_LENGTH
    with pytest.raises(StudyNameError):
        check_study_name(text)
