"""What the README shows of files it ships (the worker's systemd unit, the Dockerfile, a
container work pool's prefect.yaml steps) matches those files, checked by reading: there is no
Docker daemon or systemd on the test machines."""

import re
import tomllib
from pathlib import Path

import yaml

from deployments.prefect_env import FLOW_RUN_ENV

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_shows_the_worker_unit_as_shipped() -> None:
    unit = (REPO / "deployments" / "gallery-snapshot-worker.service").read_text(encoding="utf-8")
    assert unit in fenced("ini")
    assert (
        "ExecStart=/opt/gallery-snapshot/bin/prefect worker start --pool gallery-snapshot" in unit
    )


def copied(dockerfile: str) -> set[str]:
    """The checkout paths the Dockerfile's COPY lines take (their last word is the target)."""
    return {
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }


def test_the_dockerfile_copies_all_the_package_build_needs_and_only_what_exists() -> None:
    sources = copied((REPO / "deployments" / "Dockerfile").read_text(encoding="utf-8"))
    assert all((REPO / source).exists() for source in sources), sources
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    # The packages, the build's own files, the lock, and the file deployments/prefect.yaml links to.
    needed = packages | {"pyproject.toml", project["project"]["readme"], "requirements.lock"}
    needed.add(str((REPO / "deployments" / "prefect.yaml").resolve().relative_to(REPO)))
    assert needed <= sources, needed - sources
    ignored = [line.rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert not needed & set(ignored)


def test_the_container_pool_steps_parse_and_build_the_shipped_dockerfile() -> None:
    [steps] = [block for block in fenced("yaml") if "build_docker_image" in block]
    document = yaml.safe_load(steps)
    [build] = document["build"]
    options = build["prefect_docker.deployments.steps.build_docker_image"]
    assert (REPO / options["dockerfile"]).is_file()
    [push] = document["push"]
    assert push["prefect_docker.deployments.steps.push_docker_image"]["image_name"] == (
        f"{{{{ {options['id']}.image_name }}}}"
    )
    pool = document["definitions"]["work_pools"]["gallery_snapshot_pool"]
    assert pool["job_variables"]["image"] == f"{{{{ {options['id']}.image }}}}"
    # The flow's environment that `setup` writes into the process pool's template.
    assert FLOW_RUN_ENV.items() <= pool["job_variables"]["env"].items()
