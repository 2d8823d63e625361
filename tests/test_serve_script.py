"""./scripts/serve, the README's run command, with a .env copied from .env.example: what the
environment says wins, and .env fills in the rest. The script runs for real; only the
installing it does first and the service it ends in are stood in for, by programs that say
which settings the service would have been started with."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

from tests.deployment import ROOT

SAYS_SETTINGS = '#!/bin/sh\necho "PORT=$PORT DATA_DIR=$DATA_DIR SIP_DOMAIN=$SIP_DOMAIN"\n'
DOES_NOTHING = "#!/bin/sh\nexit 0\n"


def executable(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def serve(tmp_path, **environment) -> str:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "serve", tmp_path / "scripts" / "serve")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")  # the README's "copy to .env"
    executable(tmp_path / "bin" / "python3", DOES_NOTHING)  # `python3 -m venv .venv`
    executable(tmp_path / ".venv" / "bin" / "pip", DOES_NOTHING)
    executable(tmp_path / ".venv" / "bin" / "python", SAYS_SETTINGS)  # `python -m handoff.launch`
    env = {key: value for key, value in os.environ.items() if key not in ("PORT", "DATA_DIR", "SIP_DOMAIN")}
    env.update(environment, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    done = subprocess.run([str(tmp_path / "scripts" / "serve")], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_setting_given_on_the_command_line_wins_over_the_copied_env_file(tmp_path):
    assert serve(tmp_path, PORT="5001", DATA_DIR="/srv/handoff") == \
        "PORT=5001 DATA_DIR=/srv/handoff SIP_DOMAIN=sbc.example.com"


def test_the_env_file_fills_in_what_the_environment_leaves_unset(tmp_path):
    assert serve(tmp_path) == "PORT=5000 DATA_DIR=./var SIP_DOMAIN=sbc.example.com"
