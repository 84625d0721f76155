"""The demo gallery as its users start it: the server of ``server.py`` on a loopback port,
answering from a background thread until stopped."""

from __future__ import annotations

import threading

from gallery_snapshot.demo_gallery.content import Catalogue, demo_catalogue
from gallery_snapshot.demo_gallery.server import DemoGalleryServer, GalleryState

# The demo gallery's usual port (also ``gallery-snapshot demo-gallery``'s default).
DEMO_PORT = 8765


class DemoGallery:
    """The demo gallery on a free loopback port, served from a background thread.

    ``with DemoGallery() as gallery:`` then point the client at ``gallery.api_url``, allow
    ``gallery.image_host`` and authenticate with ``gallery.client_id``.
    """

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int | None = 0,
        client_limit: int = 12_500,
    ) -> None:
        """``port=None``: ``DEMO_PORT`` when it is free, else any free port. Image URLs
        include the port, and a stored image is reused by URL, so runs that keep the port
        reuse each other's images."""
        self.state = GalleryState(
            catalogue=catalogue or demo_catalogue(), latency=latency, client_limit=client_limit
        )
        try:
            self._server = DemoGalleryServer(self.state, host, DEMO_PORT if port is None else port)
        except OSError:
            if port is not None:
                raise
            self._server = DemoGalleryServer(self.state, host, 0)
        self._thread = threading.Thread(
            # A short poll interval: stopping the gallery ends a demo run sooner.
            target=lambda: self._server.serve_forever(poll_interval=0.05),
            name="demo-gallery",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        return self._server.image_base

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/3"

    @property
    def image_host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def client_id(self) -> str:
        return self.state.client_id

    def start(self) -> DemoGallery:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> DemoGallery:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
