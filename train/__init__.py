"""The training command line: ``python -m train``."""
