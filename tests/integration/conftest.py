"""End-to-end fixtures: a real lab process (tests/lab/xconlab) and real ansible-playbook runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XCONLAB = os.path.join(ROOT, "tests", "lab", "xconlab")
TOPOLOGIES = os.path.join(ROOT, "tests", "lab", "topologies")
BIN = os.path.dirname(sys.executable)


class Lab:
    """One running lab with its own state dir, inventory, report and firewall-state dirs."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.state_dir = str(tmp_path / "lab")
        self.inventory = str(tmp_path / "hosts.yml")
        self.reports = str(tmp_path / "reports")
        # XCON_FLEET_PROCESSES=2: every fleet task of these small labs runs its first share in a forked
        # process (xcon.fleet_fork), as a fleet of 32 servers or more does on a 2-core controller
        self.env = dict(os.environ, XCONLAB_STATE_DIR=self.state_dir, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                        PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                        XCON_FLEET_PROCESSES=os.environ.get("XCON_FLEET_PROCESSES", "2"))

    def ctl(self, *args, check=True):
        proc = subprocess.run([XCONLAB, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"xconlab {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
        return proc

    def up(self, topology, time_scale=None):
        """Start the lab; `time_scale` 0 freezes its clock (only `advance` and the runs move it)."""
        path = topology if os.path.isabs(topology) else os.path.join(TOPOLOGIES, topology)
        self.ctl("up", path, "--inventory", self.inventory, *(("--time-scale", str(time_scale)) if time_scale is not None else ()))

    def down(self):
        self.ctl("down", check=False)

    def edit_inventory(self, change):
        """Rewrite the generated inventory after `change(inventory)` edited it (a plain YAML mapping)."""
        import yaml
        with open(self.inventory, encoding="utf-8") as handle:
            inventory = yaml.safe_load(handle)
        change(inventory)
        with open(self.inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump(inventory, handle)
        return inventory

    def snapshot(self):
        return json.loads(self.ctl("snapshot").stdout)

    def advance(self, minutes):
        self.ctl("advance", str(minutes))

    def playbook(self, *args, playbook="fix-xcon.yml", extra=None):
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, os.path.join(ROOT, playbook),
               "-e", f"xcon_report_dir={self.reports}", "-e", f"xcon_state_dir={self.tmp}/state", *args]
        for key, value in (extra or {}).items():
            cmd += ["-e", f"{key}={value}"]
        return subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=900)

    def report(self):
        with open(os.path.join(self.reports, "latest", "report.json"), encoding="utf-8") as handle:
            return json.load(handle)


@pytest.fixture
def lab(tmp_path):
    instance = Lab(tmp_path)
    yield instance
    instance.down()


def directory_and_firewalls(snapshot):
    """The parts of a snapshot a check-mode run must not change."""
    return {"directory": {name: server["directory"] for name, server in snapshot["servers"].items()},
            "firewalls": snapshot["firewalls"],
            "services": {name: server["service"] for name, server in snapshot["servers"].items()}}
