"""The ``contrastkit`` command line: train, recipes, export, embed, eval (see ``contrastkit --help``)."""

from contrastkit.cli.main import main

__all__ = ["main"]
