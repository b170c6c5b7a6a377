"""The service files: every systemd unit passes ``systemd-analyze verify`` (with the
installation's path replaced by this checkout's ``dispatch``), the desk unit is a template per
department, each long-running process is stopped with SIGTERM and waited for, and the Procfile
runs the same commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
INSTALLED = "/opt/dispatch/venv/bin/dispatch"


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    here = str(Path(sys.executable).with_name("dispatch"))
    assert Path(here).exists(), "install the package (pip install -e .) first"
    names = []
    for unit in sorted(UNITS.iterdir()):
        if unit.suffix not in (".service", ".target"):
            continue
        text = unit.read_text(encoding="utf-8")
        if unit.suffix == ".service":
            assert f"ExecStart={INSTALLED} " in text, unit.name
            assert "KillSignal=SIGTERM" in text and "TimeoutStopSec=" in text and "Restart=on-failure" in text
        name = unit.name.replace("@.service", "@chengguan.service")  # a template, as one department
        (tmp_path / name).write_text(text.replace(INSTALLED, here), encoding="utf-8")
        names.append(name)
    assert {"dispatch-engine.service", "dispatch-relay.service", "dispatch-projector.service",
            "dispatch-watchdog.service", "dispatch-web.service", "dispatch-desk@chengguan.service",
            "dispatch.target"} <= set(names)
    done = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    desk = (tmp_path / "dispatch-desk@chengguan.service").read_text(encoding="utf-8")
    assert "--dept %i" in desk


def test_the_procfile_runs_the_units_commands() -> None:
    procfile = {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
                for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")}
    assert set(procfile) == {"engine", "relay", "projector", "watchdog", "web", "desk-chengguan"}
    for name, command in procfile.items():
        unit_name = "desk@" if name.startswith("desk-") else name  # a department's desk: the template
        unit = (UNITS / f"dispatch-{unit_name}.service").read_text(encoding="utf-8")
        verb = command.split()[1]
        assert f"{INSTALLED} {verb}" in unit, (name, verb)
