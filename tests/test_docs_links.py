"""Every relative link and image of the README, ``docs/*.md`` and ``benchmarks/README.md``
points to a file that exists, and a ``#fragment`` to a heading of the page it names (GitHub's
heading anchors). Sections move between these pages; a link left behind fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

PAGES = sorted(
    [REPO / "README.md", REPO / "benchmarks" / "README.md", *(REPO / "docs").glob("*.md")]
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def _prose(path: Path) -> str:
    """The page without its fenced blocks (code, terminal output), which hold no links."""
    return FENCE.sub("", path.read_text())


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path), flags=re.MULTILINE)
    return {_anchor(heading) for heading in headings}


def _links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(_prose(path))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ...
    ]


def test_the_pages_exist() -> None:
    assert (REPO / "docs").is_dir()
    names = {str(page.relative_to(REPO)) for page in PAGES}
    assert {"README.md", "benchmarks/README.md", "docs/policy.md"} <= names


def test_links_are_found() -> None:
    links = _links(REPO / "README.md")
    assert "docs/policy.md#using-the-exported-policy" in links
    assert "../benchmarks/kinds/full.png" in _links(REPO / "docs" / "policy.md")  # an image


def test_anchor_rule() -> None:
    assert _anchor("Data: `--data` specs") == "data---data-specs"
    assert _anchor("Is a screening trial's rank the full budget's?") == (
        "is-a-screening-trials-rank-the-full-budgets"
    )
    assert _anchor("`cropsearch search`") == "cropsearch-search"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        file, _, fragment = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
            where = resolved.relative_to(REPO)
            broken.append(f"{target}: no heading with anchor #{fragment} in {where}")
    assert not broken, "\n".join(broken)
