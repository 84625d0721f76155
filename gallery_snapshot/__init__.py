"""gallery-snapshot: validated, deduplicated snapshots of image galleries.

The modules of this package are plain Python (no Prefect): sources list links,
``selection`` filters them, ``downloader`` downloads, ``validation`` checks and
``manifest`` records. ``tasks/`` and ``flows/`` wrap them for Prefect.
"""

__version__ = "0.1.0"
