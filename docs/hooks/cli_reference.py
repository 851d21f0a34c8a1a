"""MkDocs hook: the CLI reference, generated at build time from the typer app ``bumps.cli.app``.

A line ``<!-- cli-reference -->`` in a page is replaced by one section per command: its usage line, its
help text and a table of its arguments and options (names, help, default) exactly as ``--help`` has them.
Nothing is typed by hand, so a flag added, renamed or removed in ``bumps/cli.py`` shows up here.
"""

from __future__ import annotations

import html
import re

import typer.main

MARKER = "<!-- cli-reference -->"
TAIL = re.compile(r"\s*\[(default: .*|required)\]\s*$", re.DOTALL)


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _command(command, name: str, parent) -> str:
    ctx = command.make_context(name, [], parent=parent, resilient_parsing=True)
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    lines = [f"## `bumps {name}`", "", f"```text\n{usage}\n```", "", (command.help or "").strip(), ""]
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or record[0].startswith("--help"):
            continue
        names, help_text = record
        tail = TAIL.search(help_text)
        default = tail.group(1) if tail else ""
        default = "*required*" if default == "required" else default and f"`{_cell(default[len('default: ') :])}`"
        help_text = help_text[: tail.start()] if tail else help_text
        kind = "argument" if param.param_type_name == "argument" else "option"
        rows.append(f"| `{names}` | {kind} | {_cell(help_text)} | {default} |")
    if rows:
        lines += ["| name | kind | what | default |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines)


def render() -> str:
    from bumps.cli import app

    group = typer.main.get_command(app)
    root = group.make_context("bumps", [], resilient_parsing=True)
    sections = [f"```text\n{group.get_usage(root).removeprefix('Usage: ')}\n```", "", (group.help or "").strip(), ""]
    for name in group.list_commands(root):
        sections.append(_command(group.get_command(root, name), name, root))
    return "\n".join(sections)


def on_page_markdown(markdown, page, config, files):
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
