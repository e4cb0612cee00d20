"""The `mtl-perception` subcommands: argument parsing and printing only.

Each module defines add_arguments(parser) and run(args) -> int, and imports its
heavy dependencies inside run(), so that building the parser stays light.
"""
