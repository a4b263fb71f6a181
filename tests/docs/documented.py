"""The commands that the documentation shows, extracted mechanically so that no new line can slip by.

A command is a line that starts with `make`, `dreamstream`, `python`, `torchrun` or `.venv/bin/`, optionally
after `VAR=value` assignments or a `$ ` prompt:
- in README.md and docs/*.md: inside a code block (indented by four spaces, or fenced); a line ending in
  `\\` continues on the next; the lines after a `$ ` command, up to a blank line, are its shown output
  (an `error:` line there is an expected failure, checked word for word);
- in configs/**/*.yaml: a comment line, `#   make ...`.
Each page is a script: its commands run in order from the root of one fresh copy of the repository.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_COMMAND = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S* )*(?:make|dreamstream|python3?(?:\.\d+)?|torchrun)(?:\s|$)"
                      r"|^\.venv/bin/")


@dataclasses.dataclass(frozen=True)
class Command:
    page: str  # path relative to the repository root
    line: int
    text: str  # exactly as typed (prompt removed)
    output: tuple[str, ...] = ()  # the output the page shows for it, if any

    @property
    def words(self) -> str:
        """The command without its trailing `# comment`."""
        return re.split(r"\s+#\s", self.text, maxsplit=1)[0].strip()

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Every file whose commands are tests, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").rglob("*.yaml"))]


def commands(page: Path) -> list[Command]:
    lines = page.read_text().splitlines()
    name = str(page.relative_to(ROOT))
    block = _yaml_comments(lines) if page.suffix == ".yaml" else _code_lines(lines)
    out: list[Command] = []
    i = 0
    while i < len(block):
        number, text = block[i]
        i += 1
        if not _COMMAND.match(text):
            continue
        while text.endswith("\\") and i < len(block):
            text = text[:-1].rstrip() + " " + block[i][1].strip()
            i += 1
        shown: list[str] = []
        if text.startswith("$ "):
            text = text[2:]
            while i < len(block) and block[i][1].strip() and not block[i][1].startswith("$ "):
                shown.append(block[i][1])
                i += 1
        out.append(Command(name, number, text, tuple(shown)))
    return out


def _code_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, text) of every line inside a Markdown code block; blank lines are kept as ''."""
    out: list[tuple[int, str]] = []
    fenced = False
    previous_blank = True
    indented = False
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
            out.append((number, ""))
            continue
        if fenced:
            out.append((number, line))
            continue
        if not line.strip():
            previous_blank = True
            out.append((number, ""))
            continue
        indented = line.startswith("    ") and (previous_blank or indented)
        previous_blank = False
        if indented:
            out.append((number, line[4:]))
        else:
            out.append((number, ""))
    return out


def _yaml_comments(lines: list[str]) -> list[tuple[int, str]]:
    return [(n, line.lstrip("#").strip() if line.lstrip().startswith("#") else "") for n, line in enumerate(lines, 1)]
