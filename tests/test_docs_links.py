"""The documents a user reads (README.md, docs/*.md, templates/README.md) stand on their own:
every relative link resolves to a file inside the repository, and an anchor to a heading of
that file as GitHub names it; nothing points at files outside the repository (../shared,
DESIGN.md); the README starts with the two commands; the variables `make run` reads are
documented in docs/operating.md."""

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "templates" / "README.md", *(ROOT / "docs").glob("*.md")]
)
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
# [text](target) and ![alt](target), with an optional "title"; reference definitions `[x]: target`.
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where `](…)` is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text in lower case, every character that is
    not a letter, digit, space, hyphen or underscore dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Every anchor GitHub makes for the document's headings (a repeated one gets -1, -2…)."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in HEADING.findall(FENCE.sub("", document.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(document: Path) -> list[str]:
    text = prose(document.read_text())
    targets = INLINE_LINK.findall(text) + REFERENCE.findall(text)
    return [t for t in targets if t and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", t)]


def broken_links(document: Path) -> list[str]:
    """What a reader of `document` would find broken: a link leaving the repository, to a file
    that does not exist, or to an anchor that no heading of its file makes."""
    broken = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        if path.startswith("/"):
            linked = (ROOT / path.lstrip("/")).resolve()
        else:
            linked = (document.parent / path).resolve() if path else document
        if not linked.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading makes #{anchor}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(document):
    assert broken_links(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_points_at_files_users_do_not_have(document):
    text = document.read_text()
    for outside in ("../shared", "shared/", "DESIGN.md", "STYLE.md", "/work/"):
        assert outside not in text, f"{document.relative_to(ROOT)} mentions {outside}"


def test_a_broken_link_or_anchor_is_reported(tmp_path, monkeypatch):
    """The check itself: a missing file, a missing heading and a path out of the repository
    are each reported; a link inside a code block is not a link."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Scaling out: on Citus?\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md#scaling-out-on-citus) [top](#the-readme) ![img](docs/a.md)\n"
        "[gone](docs/b.md) [anchor](docs/a.md#scaling-out) [out](../shared/DESIGN.md)\n"
        "```sh\n[in code](docs/none.md)\n```\n`[span](docs/none.md)`\n\n# The README\n"
    )
    assert broken_links(readme) == [
        "docs/b.md: no such file",
        "docs/a.md#scaling-out: no heading makes #scaling-out",
        "../shared/DESIGN.md: outside the repository",
    ]


def test_github_anchors():
    assert slug("Heartbeats: is background work happening?") == (
        "heartbeats-is-background-work-happening"
    )
    assert slug("make bench-citus: one node against the cluster") == (
        "make-bench-citus-one-node-against-the-cluster"
    )
    assert slug("Distributed by `environment_id`, colocated") == (
        "distributed-by-environment_id-colocated"
    )
    assert slug("See [the API](docs/api.md) — now") == "see-the-api--now"


def test_the_readme_starts_with_the_two_commands_and_fits_on_a_screen_or_two():
    readme = (ROOT / "README.md").read_text()
    first_block = FENCE.search(readme).group(0).splitlines()[1:-1]
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)
    assert len(readme.splitlines()) < 200


def test_every_variable_make_run_reads_is_documented():
    run = (ROOT / "scripts" / "run.py").read_text()
    read = set(re.findall(r"os\.environ\.get\(\"([A-Z_]+)\"", run))
    operating = (ROOT / "docs" / "operating.md").read_text()
    table = set(re.findall(r"^\| `([A-Z_]+)`", operating, re.MULTILINE))
    assert "RUN_ADDRESS" in read
    assert read <= table, f"undocumented in docs/operating.md: {sorted(read - table)}"


SOURCES = ("*.py", "*.html", "*.sh", "Makefile", "Procfile*", ".ci/run", "scripts/*")
MENTION = re.compile(r"(docs/[\w-]+\.md)(?:'s)?(?:,? \\?\"([^\"\\\n]+))?")


def test_what_the_code_cites_of_the_docs_is_there():
    """Code, tests and scripts that send a reader to docs/X.md (and to a section of it by name,
    `docs/operating.md, "Scaling out on Citus"`) send them somewhere that exists."""
    files = {
        path
        for pattern in SOURCES
        for path in ROOT.glob(pattern if "/" in pattern else f"**/{pattern}")
        if path.is_file() and not {".venv", ".var", "node_modules"} & set(path.parts)
    } - {Path(__file__).resolve()}  # its own examples of broken links
    cited = []
    for path in sorted(files):
        for document, section in MENTION.findall(path.read_text(errors="replace")):
            target = ROOT / document
            where = f"{path.relative_to(ROOT)} cites {document}"
            assert target.exists(), f"{where}: no such file"
            if section:
                assert section in target.read_text(), f'{where}, "{section}": not in it'
            cited.append(document)
    assert "docs/operating.md" in cited  # the settings' own pointer, at least
