"""One module per command-line verb (see bayesmix/cli.py)."""
