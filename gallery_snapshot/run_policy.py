"""What a run's parameters may make this process reach: the API that gets the client id, the
files read as URLs files, where snapshots are written, the Dask scheduler it connects to.

Whoever may start a deployment run picks its parameters (``prefect deployment run --param``,
the UI's form); the machine that runs it decides what they may reach, from its own environment:

- ``GALLERY_SNAPSHOT_API_HOSTS``: API hosts (``host``, ``host:port`` for https, or an origin
  such as ``http://127.0.0.1:8765``) the client id may go to, besides ``https://api.imgur.com``;
- ``GALLERY_SNAPSHOT_OUT_ROOTS``: absolute folders and object-store URLs (``s3://bucket``) an
  ``out_dir`` may be under, besides the output root ``~/gallery-snapshot``;
- ``GALLERY_SNAPSHOT_URLS_DIRS``: folders a ``urls_file`` may be read from, besides the output
  root (the path with its symbolic links resolved must be inside, and a regular file);
- ``GALLERY_SNAPSHOT_DASK_ADDRESSES``: the Dask schedulers a ``dask_address`` may name.

Each holds a comma-separated list. The person at a terminal running ``gallery-snapshot run``
owns the machine: the command marks its own process (``trust_terminal_user``) before it runs
the flow in it, and its options then reach anything the user can. Why a process flag and not
an environment variable or a config field: a run parameter is a field of the config, and a
process worker lets whoever sets a run's job variables set its environment too. A deployment
run's process is started by Prefect's worker or runner and never runs the CLI, so nothing a
run is given can set the flag.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gallery_snapshot.config import IMGUR_API_URL, STDIN, SnapshotConfig
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.selection import normalize_host
from gallery_snapshot.sources import needs_client_id
from gallery_snapshot.sources.urls_file import open_urls_file
from gallery_snapshot.store import absolute_name, refuse_empty, store_place

API_HOSTS_ENV = "GALLERY_SNAPSHOT_API_HOSTS"
OUT_ROOTS_ENV = "GALLERY_SNAPSHOT_OUT_ROOTS"
URLS_DIRS_ENV = "GALLERY_SNAPSHOT_URLS_DIRS"
DASK_ADDRESSES_ENV = "GALLERY_SNAPSHOT_DASK_ADDRESSES"

Origin = tuple[str, str, int]  # scheme, normalized host, port

# An API URL a run parameter may name: scheme, host, port, plain path; nothing that URL
# parsers read differently (userinfo, backslashes, %-escapes), so the host checked is the host
# connected to.
_API_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/[a-z0-9._~/-]*)?$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

_terminal_user = False


def trust_terminal_user() -> None:
    """Mark the runs of this process as its terminal user's (the CLI's ``run`` and ``demo``)."""
    global _terminal_user
    _terminal_user = True


def output_root() -> Path:
    """Where a relative ``out_dir`` goes on the machine running the flow (a worker runs each
    flow in a temporary folder)."""
    return Path.home() / "gallery-snapshot"


def api_origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of a plain http(s) URL; None for anything else."""
    match = _API_URL.fullmatch(url)  # match() takes a trailing line break
    if match is None:
        return None
    scheme = match["scheme"].lower()
    port = int(match["port"]) if match["port"] else _DEFAULT_PORTS[scheme]
    return scheme, normalize_host(match["host"]), port


def _entries(environ: Mapping[str, str], name: str) -> list[str]:
    return [entry.strip() for entry in environ.get(name, "").split(",") if entry.strip()]


def _bad_entry(name: str, entry: str, wanted: str) -> ConfigError:
    return ConfigError(f"{name} of this worker's environment: {entry!r} is not {wanted}")


def _api_origins(environ: Mapping[str, str]) -> frozenset[Origin]:
    origins = {api_origin(IMGUR_API_URL)}
    for entry in _entries(environ, API_HOSTS_ENV):
        origin = api_origin(entry if "://" in entry else f"https://{entry}")
        if origin is None:
            raise _bad_entry(API_HOSTS_ENV, entry, "a host, host:port or http(s)://host:port")
        origins.add(origin)
    return frozenset(origin for origin in origins if origin is not None)


def _folder(name: str, entry: str) -> str:
    path = os.path.expanduser(entry)
    if not os.path.isabs(path):
        raise _bad_entry(name, entry, "an absolute folder")
    return os.path.normpath(path)


def _out_root(entry: str) -> str:
    try:
        return store_place(entry, base=None)
    except ValueError as exc:
        raise _bad_entry(OUT_ROOTS_ENV, entry, str(exc)) from None


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class RunPolicy:
    """What this process lets a run's parameters reach (see the module's docstring)."""

    terminal: bool
    output_root: str
    api_origins: frozenset[Origin]
    out_roots: tuple[str, ...]  # absolute folders and canonical object-store URLs
    urls_dirs: tuple[str, ...]  # absolute folders, symbolic links resolved
    dask_addresses: frozenset[str]

    @classmethod
    def of_this_process(cls, environ: Mapping[str, str] = os.environ) -> RunPolicy:
        """The policy of this process: its environment, and whether the CLI marked it."""
        root = str(output_root())
        out_roots = [_out_root(entry) for entry in _entries(environ, OUT_ROOTS_ENV)]
        urls_dirs = [_folder(URLS_DIRS_ENV, entry) for entry in _entries(environ, URLS_DIRS_ENV)]
        return cls(
            terminal=_terminal_user,
            output_root=root,
            api_origins=_api_origins(environ),
            out_roots=(root, *out_roots),
            urls_dirs=tuple(os.path.realpath(folder) for folder in (root, *urls_dirs)),
            dask_addresses=frozenset(_entries(environ, DASK_ADDRESSES_ENV)),
        )


def checked_out_dir(out_dir: str, policy: RunPolicy) -> str:
    """The folder or store ``out_dir`` names on this machine (a relative folder under the output
    root); ConfigError when a run parameter may not write there."""
    refuse_empty(out_dir)
    place = store_place(out_dir, base=policy.output_root)
    if policy.terminal or any(_within(place, root) for root in policy.out_roots):
        return absolute_name(out_dir, base=policy.output_root)
    raise ConfigError(
        f"out_dir {out_dir!r} is not where this worker writes for a run: name a folder "
        f"relative to ~/gallery-snapshot, or one under {OUT_ROOTS_ENV} of its environment"
    )


def checked_urls_file(urls_file: str, policy: RunPolicy) -> str:
    """The path of a regular file ``urls_file`` names (a relative path under the output root),
    symbolic links resolved; ConfigError when a run parameter may not read it. Standard input
    (``-``) is the command line's only: a worker's is no list of URLs, and may be a terminal."""
    if urls_file == STDIN:
        if policy.terminal:
            return urls_file
        raise ConfigError("urls_file '-' (standard input) is for the command line only")
    if policy.terminal:
        open_urls_file(urls_file).close()
        return urls_file
    path = os.path.realpath(os.path.join(policy.output_root, os.path.expanduser(urls_file)))
    if not any(_within(path, folder) for folder in policy.urls_dirs):
        raise ConfigError(
            f"urls_file {urls_file!r} is not in a folder this worker reads URLs files from: "
            f"~/gallery-snapshot, or one in {URLS_DIRS_ENV} of its environment"
        )
    open_urls_file(path).close()  # a FIFO, a device, a folder: refused now, not when read
    return path


def check_api_url(api_url: str, policy: RunPolicy) -> None:
    """ConfigError unless the client id may go to ``api_url``."""
    if policy.terminal or api_origin(api_url) in policy.api_origins:
        return
    raise ConfigError(
        f"api_url {api_url!r} is not an API this worker sends its client id to: "
        f"{IMGUR_API_URL}, or a host in {API_HOSTS_ENV} of its environment"
    )


def check_dask_address(dask_address: str, policy: RunPolicy) -> None:
    if policy.terminal or dask_address in policy.dask_addresses:
        return
    raise ConfigError(
        f"dask_address {dask_address!r} is not a scheduler this worker connects to for a run: "
        f"list it in {DASK_ADDRESSES_ENV} of its environment"
    )


def checked_config(config: SnapshotConfig, policy: RunPolicy) -> SnapshotConfig:
    """``config`` with its ``out_dir`` and ``urls_file`` as this machine reads them; ConfigError
    (one line) for the first parameter that reaches beyond ``policy``."""
    if not config.demo_gallery and needs_client_id(config.source):
        check_api_url(config.source.api_url, policy)  # the demo gallery's own URL replaces it
    if config.dask_address is not None:
        check_dask_address(config.dask_address, policy)
    source = config.source
    if source.kind == "urls" and source.urls_file is not None:
        source = source.model_copy(
            update={"urls_file": checked_urls_file(source.urls_file, policy)}
        )
    return config.model_copy(
        update={"out_dir": checked_out_dir(config.out_dir, policy), "source": source}
    )
