"""Sambung's shell: settings, logging, metrics, database, HTTP API, call dispatch."""
