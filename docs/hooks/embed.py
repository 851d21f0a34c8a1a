"""MkDocs hook: embed the committed generated reports and figures at build time, never copies of them.

* Every file under ``reports/`` and ``figures/`` (repository root) is published at the same path in the
  site, so a page links ``../figures/lowrank_competition.png`` or ``../reports/claims.json`` as it would
  in the repository.
* A line ``<!-- embed: reports/claims.md -->`` in a page is replaced by that file's text: its headings
  one level down (the page keeps its own title; ``shift=2`` for two) and its relative links rewritten
  to work from the page.

A missing file is an error, so ``mkdocs build --strict`` fails instead of publishing a stale page.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

PUBLISHED = ("reports", "figures")
EMBED = re.compile(r"^<!--\s*embed:\s*(\S+)(?:\s+shift=(\d))?\s*-->[ \t]*$", re.MULTILINE)
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_files(files, config):
    root = _root(config)
    for folder in PUBLISHED:
        for path in sorted((root / folder).glob("*")):
            if path.is_file() and path.suffix != ".md":
                files.append(File.generated(config, f"{folder}/{path.name}", abs_src_path=str(path)))
    return files


def _relink(text: str, source: str, page_dir: str) -> str:
    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^[#/]", target):
            return m.group(0)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
        return m.group(1) + posixpath.relpath(resolved, page_dir or ".") + m.group(3)

    return LINK.sub(fix, text)


def _demote(text: str, shift: int) -> str:
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        heading = None if fenced else re.match(r"(#{1,6}) ", line)
        if heading:
            line = "#" * min(len(heading.group(1)) + shift, 6) + line[heading.end(1) :]
        out.append(line)
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    root = _root(config)

    def embed(m: re.Match) -> str:
        source = m.group(1)
        path = root / source
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri}: embedded file {source} does not exist")
        text = path.read_text(encoding="utf-8")
        return _demote(_relink(text, source, posixpath.dirname(page.file.src_uri)), int(m.group(2) or 1))

    return EMBED.sub(embed, markdown)
