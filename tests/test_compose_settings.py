"""`docker compose up` with a .env copied from .env.example (the README's "Docker"): each
container's settings are the image's ENV, then .env (`env_file:`), then the service's own
`environment:` (Docker's order: each one wins over the one before). Read that way, web and
worker must keep their data on the volume they share."""
from __future__ import annotations

import re

import yaml

from tests.deployment import ROOT


def image_env() -> dict[str, str]:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = [pair for line in re.findall(r"^ENV\s+(.+)$", dockerfile, flags=re.MULTILINE) for pair in line.split()]
    return dict(pair.split("=", 1) for pair in pairs)


def env_file() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def container_env(service: dict) -> dict[str, str]:
    return {**image_env(), **env_file(), **{k: str(v) for k, v in (service.get("environment") or {}).items()}}


def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_web_and_worker_keep_their_data_on_the_shared_volume():
    for name in ("web", "worker"):
        service = services()[name]
        shared = next(volume.split(":", 1)[1] for volume in service["volumes"] if volume.startswith("data:"))
        # Elsewhere (./var under the image's /app) neither shares the snapshot or metrics, and
        # the image's user may not even create it.
        assert container_env(service)["DATA_DIR"] == shared, name

