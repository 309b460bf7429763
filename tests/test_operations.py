"""The operations guide (docs/operations.md) stays true: its systemd unit passes `systemd-analyze
verify`, every `shuangsuiji` command in its shell blocks parses with the real command line, its
configuration snippets load, and the README links it and lists `check`, `backup`, `restore`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operations.md"
UNIT = ROOT / "docs" / "shuangsuiji.service"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/shuangsuiji/.venv/bin/shuangsuiji serve" in text
    # verify checks that ExecStart's program exists: point it at this installation's.
    here = Path(sys.prefix) / "bin" / "shuangsuiji"
    unit = tmp_path / "shuangsuiji.service"
    unit.write_text(text.replace("/opt/shuangsuiji/.venv/bin/shuangsuiji", str(here)), "utf-8")
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if unit.name in line]
    assert ours == [], ours  # no unknown keys or bad values in our unit


def test_every_shuangsuiji_command_in_the_guide_parses() -> None:
    parser = build_parser()
    commands = []
    for block in _blocks("sh"):
        for raw in block.splitlines():
            line = raw.split(" #")[0].strip()
            words = shlex.split(line) if line else []
            if words and words[0].endswith("shuangsuiji") and "=" not in words[0]:
                commands.append(words[1:])
    verbs = {argv[0] for argv in commands}
    assert {"migrate", "check", "backup", "restore"} <= verbs, verbs
    for argv in commands:
        args = parser.parse_args(argv)  # SystemExit (exit 2) on a verb or option that is wrong
        assert args.verb == argv[0]


def test_the_guides_configuration_snippets_load(tmp_path: Path) -> None:
    for n, block in enumerate(_blocks("toml")):
        if "…" in block:  # an elided list (the holiday calendar): checked by shape below
            block = re.sub(r",\s*…", "", block)
        path = tmp_path / f"{n}.toml"
        path.write_text(block, encoding="utf-8")
        load_settings(str(path))  # ConfigError names a wrong key or value


def test_the_nginx_example_proxies_the_default_paths() -> None:
    (nginx,) = _blocks("nginx")
    settings = load_settings(None)
    assert f"location = {settings.server.callback_path} " in nginx
    assert f"location {settings.public.path_prefix}/ " in nginx
    assert "location /upload/ " in nginx and "location = /healthz " in nginx
    assert f"server 127.0.0.1:{settings.server.port};" in nginx


def test_the_readme_links_the_guide_and_lists_the_operator_verbs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme
    for verb in ("check", "backup", "restore"):
        assert re.search(rf"\b{verb}\b", readme.split("## Command line")[1].split("##")[0])
