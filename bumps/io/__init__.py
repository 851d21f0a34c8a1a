"""Files: run files and checkpoints, the series schema, CSV curves, tidy tables, PNG figures."""
