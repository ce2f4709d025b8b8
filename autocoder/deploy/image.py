"""`doit image`: build and tag the container image through the Docker SDK when an engine is
reachable (DOCKER_HOST or the default socket); without one, say so in one line and skip."""

from __future__ import annotations

import os
from pathlib import Path

from doit.exceptions import TaskFailed


def run_image(directory: Path) -> TaskFailed | None:
    import docker
    import docker.errors

    from autocoder.tasks.deploy_tasks import DEPLOYMENTS, load_plan

    plan = load_plan(directory)
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except docker.errors.DockerException:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        print(
            f"image: skipped, no container engine reachable at {where} (start one, or set DOCKER_HOST); "
            f"{DEPLOYMENTS}/Dockerfile was still validated by deploy:validate"
        )
        return None
    try:
        image, _ = client.images.build(
            path=str(directory / DEPLOYMENTS), dockerfile="Dockerfile", tag=plan.image, rm=True, pull=False
        )
    except docker.errors.DockerException as exc:
        return TaskFailed(f"image: the build of {plan.image} failed: {exc}")
    print(f"image: built {plan.image} ({image.id})")
    return None
