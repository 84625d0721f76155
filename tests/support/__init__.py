"""Test doubles that are real components: servers on loopback and a Prefect-free pipeline."""
