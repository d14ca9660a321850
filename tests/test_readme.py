"""The documents a user reads (README.md, docs/, templates/README.md) stand on their own: every
relative link and anchor resolves inside the repository, nothing points at files outside it,
and the variables `make run` reads are documented."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "templates" / "README.md", *(ROOT / "docs").glob("*.md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(document):
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check here
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.is_relative_to(ROOT), f"{document.name} links outside the repo: {target}"
        assert linked.exists(), f"{document.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{document.name}: no heading for {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_points_at_files_users_do_not_have(document):
    text = document.read_text()
    assert "shared/" not in text
    assert "DESIGN.md" not in text


def test_every_variable_make_run_reads_is_documented():
    run = (ROOT / "scripts" / "run.py").read_text()
    read = set(re.findall(r"os\.environ\.get\(\"([A-Z_]+)\"", run))
    table = set(re.findall(r"^\| `([A-Z_]+)`", (ROOT / "README.md").read_text(), re.MULTILINE))
    assert "RUN_ADDRESS" in read
    assert read <= table, f"undocumented: {sorted(read - table)}"
