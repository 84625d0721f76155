"""Sources list the images of a gallery; they never download.

A new gallery site is one more module here exposing a function that returns a ``Listing``,
plus its line in ``list_links``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gallery_snapshot.config import DEFAULT_DEADLINE, SourceSpec
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.imgur_api import ImgurClient
from gallery_snapshot.models import Listing
from gallery_snapshot.sources.imgur import list_imgur
from gallery_snapshot.sources.urls_file import list_urls_file

__all__ = ["list_links", "needs_client_id"]

logger = logging.getLogger(__name__)


def needs_client_id(spec: SourceSpec) -> bool:
    return spec.kind != "urls"


def list_links(
    spec: SourceSpec,
    *,
    client_id: str | None,
    timeout: float = 30.0,
    deadline: float = DEFAULT_DEADLINE,
    before_request: Callable[[], None] | None = None,
) -> Listing:
    """The listing ``spec`` names. ``client_id`` is required for Imgur sources; each API
    request ends within ``deadline`` seconds; ``before_request`` runs before each API request
    (a shared rate limit)."""
    if spec.kind == "urls":
        assert spec.urls_file is not None  # guaranteed by SourceSpec's validation
        return list_urls_file(spec.urls_file)
    if not client_id:
        raise ConfigError(
            "no Imgur client id: set IMGUR_CLIENT_ID (or create the Prefect Secret block "
            "'imgur-client-id')"
        )
    client = ImgurClient(
        spec.api_url,
        client_id,
        timeout=timeout,
        deadline=deadline,
        before_request=before_request,
    )
    listing = list_imgur(spec, client)
    logger.info("API credits after listing: %s", client.credits_summary())
    return listing
