"""What a source module declares: its options (a pydantic model whose fields join
``SourceSpec``, the config's ``source``), and per kind of listing it reads, a ``Source``:
whether it needs a client id, the option it cannot do without, how a spec of it describes
itself, and how it lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gallery_snapshot.http import DEFAULT_DEADLINE
from gallery_snapshot.models import Listing

if TYPE_CHECKING:
    from gallery_snapshot.sources.spec import SourceSpec


@dataclass(frozen=True)
class Access:
    """What listing may use: the client id (for sources that need one), per-request limits,
    and a hook run before each API request (a shared rate limit)."""

    client_id: str | None = None
    timeout: float = 30.0
    deadline: float = DEFAULT_DEADLINE
    before_request: Callable[[], None] | None = None


@dataclass(frozen=True)
class Source:
    """One kind of listing. ``needs`` names the option a spec of this kind must set (on the
    command line, setting it selects this kind); ``check`` refuses option combinations the
    kind does not offer (ValueError)."""

    describe: Callable[[SourceSpec], str]
    list: Callable[[SourceSpec, Access], Listing]
    needs_client_id: bool = False
    needs: str | None = None
    check: Callable[[SourceSpec], None] | None = None
