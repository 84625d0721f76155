from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server and database for all flow tests (~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def terminal_user() -> Iterator[None]:
    """The flow tests run the flow in their own process with their own options, as the CLI
    does for its user (a deployment run's process is the worker's: see test_run_parameters)."""
    from gallery_snapshot.run_policy import trust_terminal_user
    from tests.support.terminal_user import forget_terminal_user

    trust_terminal_user()
    yield
    forget_terminal_user()


@pytest.fixture(autouse=True, scope="session")
def demo_gallery_port() -> Iterator[None]:
    """A ``demo_gallery`` run takes the demo's usual port when it is free, else any port, and
    its image URLs hold the port: runs on different ports reuse nothing. These tests compare
    runs, so their demo gallery gets a port of its own, which another suite on the machine
    cannot take between two runs (the OS does not hand out a port just freed at once)."""
    from gallery_snapshot.demo_gallery import gallery
    from tests.support.prefect_server import free_port

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gallery, "DEMO_PORT", free_port())
        yield
