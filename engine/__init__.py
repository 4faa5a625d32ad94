"""Sambung's shell: settings, logging, metrics, database, HTTP API, call dispatch."""

__version__ = "0.1.0"
