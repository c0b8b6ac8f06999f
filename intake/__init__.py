"""Intake: secure tip and testimony intake, encrypted on arrival, read offline."""

__version__ = "0.1.0"
