"""What the tests share, and the only test code a test module imports: real components on
loopback (the Prefect server, S3, Dask, hostile and controlled servers), a Prefect-free
pipeline, stores with recorded snapshots, and readers of what a run left."""
