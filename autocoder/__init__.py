"""Autocoder: an incremental build from a system blueprint to a verifiable system."""

__version__ = "0.1.0"
