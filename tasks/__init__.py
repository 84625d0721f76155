"""Prefect tasks: thin wrappers over the plain functions of ``gallery_snapshot``."""
