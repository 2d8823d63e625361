"""The ways to deploy stay in step: app.json, the Dockerfile and docker-compose.yml run what the
Procfile runs and know every setting .env.example documents (and the code reads)."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from handoff.config import Config

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): shlex.split(command) for name, command in
            (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))}


def env_example_names() -> list[str]:
    text = (ROOT / ".env.example").read_text()
    return re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE)


def test_the_images_default_command_is_the_procfiles_web():
    instructions = re.findall(r"^CMD\s+(.+)$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert len(instructions) == 1
    assert json.loads(instructions[0]) == procfile()["web"]


def test_compose_runs_each_procfile_process_from_the_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    processes = procfile()
    for name, argv in processes.items():
        service = compose["services"][name]
        assert service["build"] == "." and shlex.split(service["command"]) == argv
        # web and worker share DATA_DIR: the snapshot, and the metrics samples of both.
        assert "data:/data" in service["volumes"]


def test_app_json_has_the_procfiles_processes_and_redis():
    app = json.loads((ROOT / "app.json").read_text())
    assert set(app["formation"]) == set(procfile())
    assert any(addon["plan"].startswith("heroku-redis") for addon in app["addons"])


def test_app_json_names_and_describes_every_env_example_variable():
    env = json.loads((ROOT / "app.json").read_text())["env"]
    names = env_example_names()
    assert len(names) > 15
    assert not [n for n in names if n not in env], "app.json env lacks variables of .env.example"
    assert not [n for n in env if n not in names], "app.json env has variables .env.example does not document"
    for name, spec in env.items():
        assert spec.get("description"), name
    # Secrets nobody has to invent: generated at deploy time.
    assert env["HANDOFF_API_KEYS"]["generator"] == "secret"
    assert env["HANDOFF_WEBHOOK_SECRET"]["generator"] == "secret"


def test_env_example_documents_every_variable_the_config_reads():
    read = set(re.findall(r'env\.get\("([A-Z0-9_]+)"', (ROOT / "handoff" / "config.py").read_text()))
    assert read and not read - set(env_example_names())


def test_redis_tls_verify_false_accepts_a_self_signed_certificate():
    heroku = Config.from_env({"REDIS_URL": "rediss://h:6379", "REDIS_TLS_VERIFY": "false"})
    assert heroku.redis_url == "rediss://h:6379?ssl_cert_reqs=none"
    assert Config.from_env({"REDIS_URL": "rediss://h:6379"}).redis_url == "rediss://h:6379"
    assert Config.from_env({"REDIS_URL": "redis://h:6379", "REDIS_TLS_VERIFY": "false"}).redis_url == "redis://h:6379"


def test_every_relative_link_in_the_docs_opens_a_file_of_the_repository():
    """A clone must not carry dead links: the README and docs/ link only inside the repository
    (or to public pages)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    dead = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                dead.append(f"{page.relative_to(ROOT)}: {target}")
    assert not dead
