"""Prefect flows of gallery-snapshot."""
