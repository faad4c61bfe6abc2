"""The project carries its own docs: nothing cites a document outside the repository, and every docs/ page a
docstring, help text or page names exists."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The names of notes outside the repository, spelled so that this guard does not itself cite them.
OUTSIDE = re.compile(r"DESIGN[.]md|HERO[_]SPEC|STACK[.]md|S[T]YLE R\d|[.][.]/shared")


def _tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yml", ".yaml", ".txt", ".toml", ".cfg", ".sh") or path.name == "Makefile":
            yield name, path.read_text(encoding="utf-8", errors="replace")


def test_no_reference_to_a_document_outside_the_repository():
    hits = [f"{name}:{n}" for name, text in _tracked_text_files() if name != "tests/test_docs.py"
            for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits


def test_every_cited_docs_page_exists():
    missing = set()
    for name, text in _tracked_text_files():
        for page in re.findall(r"docs/([\w.-]+\.md)", text):
            if not (ROOT / "docs" / page).is_file():
                missing.add(f"{name}: docs/{page}")
        if name.startswith("docs/"):
            for page in re.findall(r"\]\(([\w.-]+\.md)\)", text):
                if not (ROOT / "docs" / page).is_file():
                    missing.add(f"{name}: {page}")
    assert not missing, sorted(missing)


def _heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_link_to_a_section_finds_its_heading():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md|)#([\w-]+)\)", text):
            dest = (page.parent / target) if target else page
            if not dest.is_file() or anchor not in _heading_anchors(dest.read_text(encoding="utf-8")):
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert not broken, broken
