"""Serving the deployments of ``prefect.yaml`` without a work pool."""
