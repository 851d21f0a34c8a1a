"""`python cli.py ...` from a checkout: the same as the installed `bumps` command (:mod:`bumps.cli`)."""

from bumps.cli import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
