"""The CLI's side of a lab's state directory: where it is, the running lab process (pid, control.json),
cleaning up after a lab, and one control request to the running lab (see cli.py)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

from . import control as ctl
from .handler import REPO_ROOT


class CliError(Exception):
    """An error to print as one line."""


class NotRunning(CliError):
    """No lab is running in the state dir."""



def state_dir() -> str:
    return os.path.abspath(os.environ.get("XCONLAB_STATE_DIR") or os.path.join(REPO_ROOT, ".xconlab"))


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


def _read_pid(directory: str) -> Optional[int]:
    try:
        with open(os.path.join(directory, ctl.PID_FILE), "r", encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: Optional[int]) -> bool:
    """True when ``pid`` is a live (not zombie) lab process."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = f"/proc/{pid}"
    if os.path.isdir("/proc/self"):
        try:
            with open(f"{proc}/stat", "r", encoding="utf-8") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                return False
            with open(f"{proc}/cmdline", "rb") as handle:
                return b"xconlab_lab.control" in handle.read()  # not a recycled pid
        except (FileNotFoundError, IndexError, ProcessLookupError):
            return False
    return True


TOOLKIT_STATE = "toolkit-state"


def _clean_state(directory: str) -> None:
    from .kdc import stop_leftover

    stop_leftover(os.path.join(directory, ctl.KDC_DIR))   # a KDC whose lab was killed
    for name in (ctl.CONTROL_FILE, ctl.PID_FILE):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    # The toolkit's own state for this lab (confirmed firewall records, evidence baselines; see
    # inventory.py) describes the previous lab, not the one starting now.
    shutil.rmtree(os.path.join(directory, TOOLKIT_STATE), ignore_errors=True)


def running_lab(directory: str) -> Dict[str, Any]:
    """``control.json`` of the running lab; NotRunning otherwise."""
    info = _read_json(os.path.join(directory, ctl.CONTROL_FILE))
    pid = (info or {}).get("pid") or _read_pid(directory)
    if not pid_alive(pid):
        raise NotRunning(f"no lab is running (state dir {directory}); start one with `tests/lab/xconlab up TOPOLOGY`")
    if info is None:
        raise CliError(f"the lab (pid {pid}) is starting or not answering; see {os.path.join(directory, ctl.LOG_FILE)}")
    return info


def request(name: str, body: Optional[Dict[str, Any]] = None, timeout: float = 600.0, directory: Optional[str] = None) -> Any:
    """One control request to the running lab (of `directory`, default the state dir)."""
    info = running_lab(directory or state_dir())
    data = json.dumps(body or {}).encode("utf-8")
    req = urllib.request.Request(f"http://127.0.0.1:{info['port']}/{name}", data=data, method="POST",
                                 headers={"Content-Type": "application/json", ctl.TOKEN_HEADER: info["token"]})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read().decode("utf-8")).get("error")
        except ValueError:
            message = None
        raise CliError(message or f"control request '{name}' failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"the lab is not answering on its control port {info['port']}: {reason}") from None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _last_log_line(directory: str) -> str:
    try:
        with open(os.path.join(directory, ctl.LOG_FILE), "r", encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
        return lines[-1] if lines else ""
    except FileNotFoundError:
        return ""

