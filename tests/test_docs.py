"""The documentation holds together: README.md is a short front door, every docs/ page is linked
from it, and every relative link or image in README.md and docs/*.md points to a file that exists
(and, with an anchor, to a heading of that page, by GitHub's slug rules). Web links are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 250

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _prose(text: str) -> list[str]:
    """The lines of a markdown text with fenced and indented code blocks blanked (a link or a
    heading there is not one)."""
    lines = []
    fence = None
    in_indented = False
    prev_blank = True
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = None
            lines.append("")
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            lines.append("")
            continue
        indented = line.startswith(("    ", "\t")) and line.strip() != ""
        in_indented = indented and (prev_blank or in_indented)
        prev_blank = line.strip() == ""
        if in_indented:
            lines.append("")
            continue
        lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-case, punctuation except '-' and '_' dropped,
    spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown page's headings; repeated slugs get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(path.read_text()):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    """Every link and image target of a markdown page, outside code blocks and code spans."""
    return [m.group(1) for line in _prose(path.read_text())
            for m in LINK.finditer(re.sub(r"`+[^`]*`+", "", line))]


def broken_links(path: Path) -> list[str]:
    """What is wrong with the relative links of one page, one line per broken link."""
    problems = []
    for target in links(path):
        if not target or target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{_name(path)}: link {target!r} points to {file_part!r}, which does not exist")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{_name(path)}: link {target!r}: no heading with the anchor #{anchor} in {_name(dest)}")
    return problems


def test_there_are_docs_pages() -> None:
    assert DOCS.is_dir() and list(DOCS.glob("*.md")), "docs/ holds no markdown pages"


@pytest.mark.parametrize("page", _pages(), ids=_name)
def test_every_relative_link_and_image_resolves(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_is_a_short_front_door() -> None:
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines, more than {MAX_README_LINES}: move text into docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README) if not t.startswith(EXTERNAL)}
    missing = [_name(p) for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link to: {', '.join(missing)}"


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    """The checks above would fail on a missing file, a missing heading and a missing image, and
    read headings the way GitHub does."""
    (tmp_path / "other.md").write_text("# Other page\n\n## Multi-fidelity search (`scheduler=asha`)\n\n## A\n\n## A\n")
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](other.md#multi-fidelity-search-schedulerasha) [ok](other.md#a-1) [ok](#title)\n"
                    "[gone](absent.md) ![gone](img/none.png) [bad](other.md#nope) [bad](#nope)\n"
                    "[web](https://example.org/x) `[code](absent2.md)`\n\n    [indented code](absent3.md)\n")
    problems = broken_links(page)
    assert len(problems) == 4, problems
    for target in ("absent.md", "img/none.png", "other.md#nope", "#nope"):
        assert any(repr(target) in p for p in problems), (target, problems)
