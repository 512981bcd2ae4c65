"""Time on the controller: reading the servers' ISO-8601 UTC times (parse_iso, the one parser), and
waiting N minutes: on the emulated lab's clock when the inventory names its control program
(`xcon_lab_control`: `xconlab advance N` runs the model for N emulated minutes at once), else in
real time. Verification and the replication wait both wait this way."""

from __future__ import annotations

import datetime as _dt
import functools
import subprocess
import time

from ansible.errors import AnsibleActionFail


@functools.lru_cache(maxsize=4096)
def parse_iso(value):
    """ISO-8601 UTC text (``YYYY-MM-DDTHH:MM:SS``, an optional fraction, ``Z``) -> aware datetime
    (by position: a fleet's report parses tens of thousands of them)."""
    text = str(value)
    fraction = text[20:26].rstrip("Z") if text[19:20] == "." else ""
    return _dt.datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19]),
                        int(fraction.ljust(6, "0")) if fraction else 0, tzinfo=_dt.timezone.utc)


def wait_minutes(lab_control, minutes):
    if lab_control:
        proc = subprocess.run([lab_control, "advance", str(minutes)], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise AnsibleActionFail(f"lab clock: {proc.stderr.strip()}")
    else:
        time.sleep(minutes * 60)
