"""The demo gallery: an Imgur-compatible server on loopback, with generated images."""

from gallery_snapshot.demo_gallery.content import Catalogue, bulk_catalogue, demo_catalogue
from gallery_snapshot.demo_gallery.gallery import DemoGallery
from gallery_snapshot.demo_gallery.server import DEMO_CLIENT_ID, GalleryState

__all__ = [
    "DEMO_CLIENT_ID",
    "Catalogue",
    "DemoGallery",
    "GalleryState",
    "bulk_catalogue",
    "demo_catalogue",
]
