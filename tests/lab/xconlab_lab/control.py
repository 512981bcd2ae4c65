"""The lab process: the model, its WinRM endpoints, the emulated clock and the control channel.

Started in the background by ``xconlab up`` as ``python -m xconlab_lab.control --topology FILE
--state-dir DIR --inventory FILE --control PATH`` (stdout/stderr go to ``DIR/lab.log``). It

1. loads the topology with the model (``Lab.from_file``);
2. starts one ``WsmanServer`` listener for every ``lab.endpoints()`` entry, with
   ``handler.CommandHandler`` answering the commands; the server keeps the lab CA (``ca.pem``) and
   the NTLM account files (``ntlm_users.N``) under ``DIR/certs``; when a host accepts Kerberos, the
   domain's MIT KDC (``kdc.py``) runs first, its realm, database, keytabs and ``krb5.conf`` under
   ``DIR/kdc`` (``status`` names them), stopped with the lab;
3. starts the clock: a ticker thread advancing the model by whole emulated minutes at the topology's
   ``time_scale`` emulated seconds per wall-clock second (0 = frozen; ``advance`` still works);
4. starts the control server: JSON over HTTP on ``127.0.0.1`` (random port), every request
   carrying the secret token of ``DIR/control.json`` in header ``X-Xconlab-Token``;
5. writes the Ansible inventory, then ``DIR/control.json`` (``{"pid", "port", "token"}``) - the
   sign for ``xconlab up`` that the lab is ready.

It runs until ``POST /shutdown`` or SIGTERM/SIGINT, then stops everything and removes
``control.json`` and ``lab.pid``. A start-up failure is written as one line to
``DIR/startup-error`` (and the traceback to the log), and the process exits 1.

Control requests (``POST /<name>``, JSON body, JSON answer; errors: HTTP 400 ``{"error": text}``):
``status``, ``advance {"minutes"}``, ``snapshot``, ``firewall {"record"}``,
``fault {"server", "kind", "args"}``, ``stats``, ``shutdown``. They are answered by ``control_requests.py``
(``LabProcess`` inherits them).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

import yaml

from . import inventory as inventory_mod
from .control_requests import FAULT_KINDS, ControlError, ControlRequests  # noqa: F401  (FAULT_KINDS: re-exported)
from .handler import CommandHandler, load_manifest

LOG = logging.getLogger("xconlab.control")

CONTROL_FILE = "control.json"
PID_FILE = "lab.pid"
LOG_FILE = "lab.log"
STARTUP_ERROR_FILE = "startup-error"
CERT_DIR = "certs"
KDC_DIR = "kdc"
TOKEN_HEADER = "X-Xconlab-Token"


def write_private(path: str, text: str) -> None:
    """Write a file readable by the owner only, atomically."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class LabProcess(ControlRequests):
    """Everything one running lab consists of."""

    def __init__(self, topology_path: str, state_dir: str, inventory_path: Optional[str],
                 control_path: str, time_scale: Optional[float] = None) -> None:
        self.topology_path = os.path.abspath(topology_path)
        self.state_dir = os.path.abspath(state_dir)
        self.inventory_path = os.path.abspath(inventory_path) if inventory_path else None
        self.control_path = os.path.abspath(control_path)
        self.time_scale_override = time_scale
        self.time_scale = 0.0
        self.token = secrets.token_hex(24)
        self.stop_event = threading.Event()
        self.lab = None
        self.wsman = None
        self.kdc = None
        self.ports: Dict[str, int] = {}
        self.endpoints: List[Dict[str, Any]] = []
        self.control_server: Optional[ThreadingHTTPServer] = None
        self.threads: List[threading.Thread] = []
        self.started_at = time.time()

    # ---- start ----------------------------------------------------------------------------
    def start(self) -> None:
        from .model import Lab
        from .wsman import EndpointConfig, WsmanServer

        begin = time.monotonic()
        self.lab = Lab.from_file(self.topology_path)
        # The model's normalised topology (defaults filled in); the raw file only as a fallback.
        topology = getattr(self.lab, "topology", None)
        if not isinstance(topology, dict):
            with open(self.topology_path, "r", encoding="utf-8") as handle:
                topology = yaml.safe_load(handle) or {}
        scale = self.time_scale_override
        if scale is None:
            scale = getattr(self.lab, "time_scale", None)
        if scale is None:
            scale = topology.get("time_scale", 0) if isinstance(topology, dict) else 0
        self.time_scale = max(0.0, float(scale or 0))

        self.endpoints = [dict(ep) for ep in self.lab.endpoints()]
        self._without_kerberos_if_unavailable()
        configs = []
        for ep in self.endpoints:
            users = {user: (entry.get("password", "") if isinstance(entry, dict) else str(entry))
                     for user, entry in (ep.get("users") or {}).items()}
            configs.append(EndpointConfig(ep["name"], scheme=ep.get("scheme", "http"),
                                          port=int(ep.get("port") or 0),
                                          auth=tuple(ep.get("auth") or ("basic", "ntlm")), users=users,
                                          fqdn=ep.get("fqdn"),
                                          codepage=int(ep.get("codepage") or 1252)))
        kerberos = self._start_kdc()
        handler = CommandHandler(self.lab, load_manifest())
        cert_dir = os.path.join(self.state_dir, CERT_DIR)
        os.makedirs(cert_dir, exist_ok=True)
        self.wsman = WsmanServer(configs, handler, cert_dir, kerberos=kerberos)
        self.ports = dict(self.wsman.start())
        for ep in self.endpoints:
            ep["port"] = self.ports[ep["name"]]
        LOG.info("%d endpoints listening (%.2fs)", len(self.ports), time.monotonic() - begin)

        self._start_control_server()
        self._start_thread("ticker", self._ticker)
        if self.inventory_path:
            data = inventory_mod.build_inventory(
                topology, self.endpoints, self.ca_path, self.control_path, self.state_dir,
                self.topology_path)
            inventory_mod.write_inventory(self.inventory_path, data)
            LOG.info("inventory written to %s", self.inventory_path)
        write_private(os.path.join(self.state_dir, CONTROL_FILE), json.dumps(
            {"pid": os.getpid(), "port": self.control_server.server_address[1], "token": self.token}))
        LOG.info("lab ready in %.2fs (time_scale %s)", time.monotonic() - begin, self.time_scale)

    def _without_kerberos_if_unavailable(self) -> None:
        """Without MIT's KDC programs or python-gssapi the lab cannot offer Kerberos: its hosts
        then offer the rest of their methods (logged, and ``status`` shows it), rather than not
        starting at all. ``make setup`` installs both."""
        from .kdc import kdc_available

        wanted = [ep for ep in self.endpoints if "kerberos" in (ep.get("auth") or [])]
        if not wanted:
            return
        missing = [] if kdc_available() else ["MIT's KDC (Debian: krb5-kdc krb5-admin-server)"]
        try:
            import gssapi  # noqa: F401 - the acceptor's library
        except ImportError:
            missing.append("python-gssapi (requirements-kerberos.txt)")
        if not missing:
            return
        LOG.warning("Kerberos is not offered by %s: %s not installed", ", ".join(ep["name"] for ep in wanted),
                    " and ".join(missing))
        for ep in wanted:
            ep["auth"] = [a for a in ep["auth"] if a != "kerberos"] or ["ntlm"]

    def _start_kdc(self):
        """The domain's KDC when a WinRM host accepts Kerberos (MIT krb5kdc on loopback; the lab
        process itself then uses its krb5.conf, as a domain member uses its domain's)."""
        from .kdc import LabKdc
        from .wsman import KerberosSetup

        hosts = [ep["fqdn"] for ep in self.endpoints if "kerberos" in (ep.get("auth") or [])]
        if not hosts:
            return None
        users = {user: entry["password"] for user, entry in self.lab.domain_accounts().items()}
        self.kdc = LabKdc(os.path.join(self.state_dir, KDC_DIR), self.lab.realm, users, hosts).start()
        os.environ["KRB5_CONFIG"] = self.kdc.krb5_conf
        return KerberosSetup(self.kdc.keytab, {self.lab.realm: self.lab.netbios_domain})

    @property
    def ca_path(self) -> str:
        return os.path.abspath(self.wsman.ca_path)

    def _start_thread(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=f"xconlab-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _start_control_server(self) -> None:
        lab_process = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "xconlab-control"

            def log_message(self, fmt, *args):  # noqa: D401 - keep the log quiet
                LOG.debug("control: " + fmt, *args)

            def do_POST(self):  # noqa: N802 - http.server's naming
                status, answer = 200, None
                try:
                    if not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), lab_process.token):
                        status, answer = 403, {"error": "bad or missing control token"}
                    else:
                        length = int(self.headers.get("Content-Length") or 0)
                        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                        answer = lab_process.dispatch(self.path.strip("/"), body)
                except ControlError as exc:
                    status, answer = 400, {"error": str(exc)}
                except Exception as exc:  # report, do not die
                    LOG.exception("control request %s failed", self.path)
                    status, answer = 400, {"error": f"{type(exc).__name__}: {exc}"}
                payload = json.dumps(answer, ensure_ascii=False, default=str).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.control_server = server
        self._start_thread("control", lambda: server.serve_forever(poll_interval=0.1))

    # ---- the clock ------------------------------------------------------------------------
    def _ticker(self) -> None:
        """Advance the model by whole emulated minutes as wall-clock time passes."""
        carry = 0.0
        last = time.monotonic()
        while not self.stop_event.wait(0.2):
            now = time.monotonic()
            carry += (now - last) * self.time_scale
            last = now
            minutes = int(carry // 60)
            if minutes > 0:
                carry -= minutes * 60
                try:
                    self.lab.advance(minutes)
                except Exception:
                    LOG.exception("the model failed to advance %d minute(s)", minutes)

    # ---- stop -----------------------------------------------------------------------------
    def run_until_stopped(self) -> None:
        while not self.stop_event.wait(0.5):
            pass

    def stop(self) -> None:
        self.stop_event.set()
        for name in (CONTROL_FILE, PID_FILE):
            try:
                os.unlink(os.path.join(self.state_dir, name))
            except FileNotFoundError:
                pass
        if self.wsman is not None:
            try:
                self.wsman.stop()
            except Exception:
                LOG.exception("stopping the WS-Management endpoints failed")
        if self.kdc is not None:
            try:
                self.kdc.stop()
            except Exception:
                LOG.exception("stopping the KDC failed")
        if self.control_server is not None:
            self.control_server.shutdown()
            self.control_server.server_close()
        LOG.info("lab stopped")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xconlab_lab.control",
                                     description="The xconlab lab process (started by `xconlab up`).")
    parser.add_argument("--topology", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--inventory")
    parser.add_argument("--control", required=True, help="absolute path of tests/lab/xconlab")
    parser.add_argument("--time-scale", type=float)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    os.makedirs(args.state_dir, exist_ok=True)
    write_private(os.path.join(args.state_dir, PID_FILE), f"{os.getpid()}\n")
    process = LabProcess(args.topology, args.state_dir, args.inventory, args.control, args.time_scale)

    def on_signal(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        process.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        process.start()
    except BaseException as exc:  # noqa: BLE001 - every start-up failure ends in one line for the CLI
        LOG.error("start-up failed:\n%s", traceback.format_exc())
        line = " ".join(str(exc).split()) or type(exc).__name__
        write_private(os.path.join(args.state_dir, STARTUP_ERROR_FILE), line + "\n")
        process.stop()
        return 1
    process.run_until_stopped()
    process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
