"""Waiting N minutes: on the emulated lab's clock when the inventory names its control program
(`xcon_lab_control`: `xconlab advance N` runs the model for N emulated minutes at once), else in
real time. Verification and the replication wait both wait this way."""

from __future__ import annotations

import subprocess
import time

from ansible.errors import AnsibleActionFail


def wait_minutes(lab_control, minutes):
    if lab_control:
        proc = subprocess.run([lab_control, "advance", str(minutes)], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise AnsibleActionFail(f"lab clock: {proc.stderr.strip()}")
    else:
        time.sleep(minutes * 60)
