"""`python -m bumps ...`: the same as the `bumps` command."""

from bumps.cli import main

main()
