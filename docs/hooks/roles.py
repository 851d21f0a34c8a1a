"""MkDocs hook: drop Sphinx role prefixes (``:func:``, ``:class:``, ...) that docstrings put before code.

mkdocstrings renders numpydoc text as Markdown, so ``:func:`find_bumps``` would show as ``:func:`` followed
by the code. The prefix is removed from the rendered API pages; the code itself stays.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|data|attr|exc|obj|const):(?=<code>)")


def on_page_content(html, page, config, files):
    return ROLE.sub("", html)
