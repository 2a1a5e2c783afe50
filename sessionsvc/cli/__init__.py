"""The ``sessionsvc`` command line: one module per command group, ``main`` in ``cli.main``."""

from sessionsvc.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
