"""The CLI entry point, `doctor`, the system-deps script and the package contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-system-deps.sh"


def _run_py(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_help_does_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from tinyml_kit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'doctor' in out.getvalue()\n"
    )
    result = _run_py(code)
    assert result.returncode == 0, result.stderr


def test_every_subcommand_has_help():
    from tinyml_kit.cli import SUBCOMMANDS, build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    assert "doctor" in choices
    for name in choices:
        assert name in SUBCOMMANDS
        assert choices[name].format_help().startswith("usage: tinyml-kit " + name)


def test_doctor_json_lists_checks_and_fixes(monkeypatch, capsys):
    from tinyml_kit import doctor

    monkeypatch.setattr(doctor, "TOOLS", [*doctor.TOOLS, ("tk-no-such-tool", "--version", "tk-fake-pkg")])
    from tinyml_kit.cli import main

    status = main(["doctor", "--json"])
    checks = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in checks}
    assert by_name["python: tensorflow"]["ok"]
    missing = by_name["tool: tk-no-such-tool"]
    assert not missing["ok"] and "tk-fake-pkg" in missing["fix"]
    assert status == 1  # a required item is missing


def _run_script(tmp_path: Path, uid: str, *args: str) -> subprocess.CompletedProcess:
    env = _fake_bin(tmp_path, uid)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env)


def _fake_bin(tmp_path: Path, uid: str) -> dict:
    """A PATH where every package is missing and `id -u` says `uid`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get-called \"$@\"\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_system_deps_script_as_normal_user_prints_sudo_and_stops(tmp_path):
    result = _run_script(tmp_path, "1000")
    assert result.returncode == 1
    assert "sudo apt-get install -y gcc-arm-none-eabi" in result.stderr
    assert "apt-get-called" not in result.stdout


def test_system_deps_script_as_root_installs(tmp_path):
    result = _run_script(tmp_path, "0")
    assert result.returncode == 0, result.stderr
    assert "apt-get-called install -y -q --no-install-recommends gcc-arm-none-eabi" in result.stdout


def test_system_deps_check_mode_reports_missing(tmp_path):
    result = _run_script(tmp_path, "0", "--check")
    assert result.returncode == 1
    assert "missing system packages" in result.stdout


@pytest.mark.slow
def test_wheel_ships_firmware_scripts_and_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("tinyml_kit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tinyml_kit/firmware/kernels/tk_common.h" in names
    assert "tinyml_kit/scripts/install-system-deps.sh" in names
    assert any(n.startswith("tinyml_kit/engine/") for n in names)
