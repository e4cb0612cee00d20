"""The options of each mtl-perception subcommand, one module each (see cli.py)."""
