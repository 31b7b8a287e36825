"""The ``modelyard`` command line: one module per command, rendering in ``render.py``."""
