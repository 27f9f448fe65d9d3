"""Find the code blocks of the docs and how each must be checked.

A fenced shell block (```sh, ```bash, ```shell or ```console) must follow a marker
comment on the line before it, `<!-- check: MODE -->`, that sets how `make docs-check`
checks it:

- `run`: run with bash (errexit, nounset, pipefail) in a scratch folder, without root;
- `root`: run the same way, but only as root, as commands that load eBPF need;
- `cluster`: meant for a real cluster: bash checks the syntax, each `helm install` or
  `helm upgrade --install` is rendered with `helm template` against the chart in this
  repository with the same values, and each `kubectl` subcommand must be one kubectl has;
- `syntax`: bash checks the syntax only, for commands of other machines (a CI runner).

`run` and `root` blocks start in the scratch folder, or with the option `in-repository`
(`<!-- check: root in-repository -->`) at the root of this repository, as commands that a
reader runs in a clone of it.

The blocks of one page and one mode run as one script, in page order, so a later block
can use the files an earlier one wrote. A ```yaml block needs no marker: every one is
parsed, and the seccomp-recorder objects in it are validated against the models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
MODES = ("run", "root", "cluster", "syntax")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^<!--\s*check:\s*(?P<mode>[a-z]+)(?P<options>(?:\s+[a-z-]+)*)\s*-->$")
IN_REPOSITORY = "in-repository"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    # The mode of the marker before it, or None without a marker.
    mode: str | None
    options: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Return the documentation pages that are checked: every Markdown file under docs/."""
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    """Return the fenced code blocks of `page`, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        fence = opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        text = "\n".join(body) + "\n"
        mode, options = _marker_before(lines, start)
        found.append(Block(page, start + 1, language, text, mode, options))
        index += 1
    return found


def _marker_before(lines: list[str], index: int) -> tuple[str | None, frozenset[str]]:
    """Return the mode and options of a marker on the last non-blank line before `index`."""
    previous = index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None, frozenset()
    match = _MARKER.match(lines[previous].strip())
    if match is None:
        return None, frozenset()
    return match["mode"], frozenset(match["options"].split())


def shell_blocks() -> list[Block]:
    """Return every shell block of every page."""
    return [block for page in pages() for block in blocks(page) if block.language in SHELL_LANGUAGES]


def script(page: Path, mode: str) -> str:
    """Join the blocks of `page` with marker `mode` into one script, each behind its location.

    Each block starts in "$CHECK_SCRATCH", or in "$CHECK_REPOSITORY" with `in-repository`;
    the caller sets both variables.
    """
    parts = []
    for block in blocks(page):
        if block.language in SHELL_LANGUAGES and block.mode == mode:
            folder = "CHECK_REPOSITORY" if IN_REPOSITORY in block.options else "CHECK_SCRATCH"
            parts.append(f'# {block.where}\ncd "${folder}"\n{_commands(block)}')
    return "\n".join(parts)


def _commands(block: Block) -> str:
    """Return the commands of a block; in a console block, the lines after a `$ ` prompt."""
    if block.language != "console":
        return block.text
    commands = [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]
    return "\n".join(commands) + "\n"
