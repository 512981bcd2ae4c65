"""``tests/lab/xconlab``: the control command of the emulated lab (``shared/spec/lab.md``).

Usage (from the repository root)::

    xconlab validate TOPOLOGY                                check a topology file, start nothing
    xconlab up TOPOLOGY [--inventory FILE] [--time-scale S]   start the lab in the background
    xconlab down                                             stop it (idempotent)
    xconlab status [--json]                                  endpoints and emulated time
    xconlab advance MINUTES                                  run the model for MINUTES emulated minutes
    xconlab snapshot                                         the whole state as JSON
    xconlab firewall apply FILE                              play the firewall operator
    xconlab admin apply FILE                                 play the operator at the Exchange Administrator program
    xconlab fault SERVER KIND [ARG]                          drop-after N | operation-timeout N |
                                                             slow SECONDS | refuse-credentials | clear
    xconlab stats                                            per endpoint requests/commands/shells
    xconlab generate N [--healthy] [--firewalls K] [-o FILE] an N-link topology
    xconlab scripts-refresh                                  rewrite known_scripts.json from files/ps

State lives in ``.xconlab/`` at the repository root (env ``XCONLAB_STATE_DIR`` overrides):
``lab.pid``, ``control.json`` (control port and token), ``certs/`` (the lab CA ``ca.pem``, NTLM user files),
``lab.log``, ``kdc/`` (the domain's Kerberos KDC when a host accepts Kerberos: ``krb5.conf`` to
point ``KRB5_CONFIG`` at, keytabs, database; its ``krb5kdc`` stops with the lab). Every error is one line on stderr (``xconlab: error: ...``) and a non-zero exit;
``status`` of a stopped lab prints ``down`` and exits 3.
The state directory and the running lab as the CLI sees them are in ``cli_state.py``.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from typing import List, NoReturn, Optional

from . import control as ctl
from .cli_state import (
    CliError, NotRunning, _clean_state, _last_log_line, _port_open, _read_json, _read_pid,
    pid_alive, request, state_dir)
from .handler import MANIFEST_PATH, REPO_ROOT, SCRIPTS_DIR

CONTROL_EXE = os.path.join(REPO_ROOT, "tests", "lab", "xconlab")
DEFAULT_INVENTORY = os.path.join("inventories", "lab", "hosts.yml")
UP_TIMEOUT = float(os.environ.get("XCONLAB_UP_TIMEOUT", "60"))
DOWN_TIMEOUT = 10.0


# ---- commands ---------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    directory = state_dir()
    topology = os.path.abspath(args.topology)
    if not os.path.isfile(topology):
        raise CliError(f"topology file not found: {args.topology}")
    os.makedirs(directory, exist_ok=True)
    # One `up` at a time per state dir (the lock goes with this process).
    lock = open(os.path.join(directory, "up.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise CliError(f"another `xconlab up` is starting a lab in {directory}") from None
    pid = _read_pid(directory) or (_read_json(os.path.join(directory, ctl.CONTROL_FILE)) or {}).get("pid")
    if pid_alive(pid):
        raise CliError(f"a lab is already up (pid {pid}, state dir {directory}); run `tests/lab/xconlab down` first")
    _clean_state(directory)
    error_file = os.path.join(directory, ctl.STARTUP_ERROR_FILE)
    if os.path.exists(error_file):
        os.unlink(error_file)
    inventory = os.path.abspath(args.inventory or os.path.join(REPO_ROOT, DEFAULT_INVENTORY))

    env = dict(os.environ)
    paths = [os.path.join(REPO_ROOT, "tests", "lab"), os.path.join(REPO_ROOT, "module_utils")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "xconlab_lab.control", "--topology", topology, "--state-dir", directory,
               "--inventory", inventory, "--control", CONTROL_EXE]
    if args.time_scale is not None:
        command += ["--time-scale", str(args.time_scale)]

    begin = time.monotonic()
    with open(os.path.join(directory, ctl.LOG_FILE), "ab") as log:
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=log, close_fds=True, start_new_session=True)
    control_file = os.path.join(directory, ctl.CONTROL_FILE)
    while True:
        if _read_json(control_file) is not None:
            break
        code = child.poll()
        if code is not None:
            reason = ""
            if os.path.exists(error_file):
                with open(error_file, "r", encoding="utf-8") as handle:
                    reason = handle.read().strip()
            raise CliError(f"the lab did not start: {reason or _last_log_line(directory) or f'exit {code}'}")
        if time.monotonic() - begin > UP_TIMEOUT:
            _stop_pid(child.pid)
            raise CliError(f"the lab did not get ready within {UP_TIMEOUT:.0f}s; see {os.path.join(directory, ctl.LOG_FILE)}")
        time.sleep(0.02)

    status = request("status")
    closed = [ep["name"] for ep in status["endpoints"] if not _port_open(ep["port"])]
    if closed:
        raise CliError(f"endpoints not listening after start: {', '.join(closed)}")
    elapsed = time.monotonic() - begin
    print(f"lab up: {len(status['endpoints'])} WinRM endpoint(s), pid {status['pid']}, "
          f"emulated time {status['time']}, ready in {elapsed:.2f}s")
    print(f"inventory: {inventory}")
    return 0


def _stop_pid(pid: int) -> bool:
    """Terminate a lab process: SIGTERM, then SIGKILL. True when it is gone."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)


def cmd_down(_args: argparse.Namespace) -> int:
    directory = state_dir()
    info = _read_json(os.path.join(directory, ctl.CONTROL_FILE)) or {}
    pid = info.get("pid") or _read_pid(directory)
    if not pid_alive(pid):
        _clean_state(directory)
        print("lab down (it was not running)")
        return 0
    if info.get("port"):
        try:
            request("shutdown", timeout=10)
        except CliError:
            pass  # fall back to signals below
    deadline = time.monotonic() + DOWN_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid) and not _stop_pid(pid):
        raise CliError(f"the lab process {pid} does not stop")
    _clean_state(directory)
    print(f"lab down (pid {pid} stopped)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        status = request("status")
    except NotRunning:
        if args.json:
            print(json.dumps({"state": "down", "state_dir": state_dir()}))
        else:
            print(f"down (no lab running; state dir {state_dir()})")
        return 3
    if args.json:
        print(json.dumps(dict(status, state="up"), indent=2))
        return 0
    print(f"up: pid {status['pid']}, emulated time {status['time']} (time_scale {status['time_scale']:g}), "
          f"topology {status['topology']}")
    print(f"inventory {status['inventory']}, CA {status['ca_path']}")
    if status.get("kerberos"):
        krb = status["kerberos"]
        print(f"kerberos realm {krb['realm']}, KDC {krb['kdc']}, KRB5_CONFIG={krb['krb5_config']}")
    width = max([len(ep["name"]) for ep in status["endpoints"]] + [4])
    for ep in status["endpoints"]:
        serves = ",".join(ep["serves"])
        print(f"  {ep['name']:<{width}}  {ep['scheme']:<5} 127.0.0.1:{ep['port']:<5}  auth {','.join(ep['auth']):<10}"
              f"  serves {serves}")
    return 0


def cmd_advance(args: argparse.Namespace) -> int:
    answer = request("advance", {"minutes": args.minutes})
    print(f"advanced {answer['minutes']} minute(s); emulated time {answer['time']}")
    return 0


def cmd_snapshot(_args: argparse.Namespace) -> int:
    print(json.dumps(request("snapshot"), indent=2, ensure_ascii=False))
    return 0


def cmd_firewall(args: argparse.Namespace) -> int:
    """``firewall apply FILE`` and ``admin apply FILE``: play the operator of a change record."""
    try:
        with open(args.file, "r", encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        raise CliError(f"change record not found: {args.file}") from None
    except ValueError as exc:
        raise CliError(f"change record {args.file} is not JSON: {exc}") from None
    print(json.dumps(request(args.command, {"record": record}), indent=2, ensure_ascii=False))
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    answer = request("fault", {"server": args.server, "kind": args.kind, "args": args.args})
    detail = " ".join(str(v) for v in (answer.get("args") or {}).values())
    print(f"fault on {answer['server']}: {answer['fault']}{' ' + detail if detail else ''}")
    return 0


def cmd_stats(_args: argparse.Namespace) -> int:
    print(json.dumps(request("stats"), indent=2, sort_keys=True))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .topology import TopologyError, load

    try:
        topo = load(args.topology)
    except TopologyError as exc:
        raise CliError(str(exc)) from None
    print(f"topology {args.topology}: valid ({len(topo['servers'])} server(s), {len(topo['firewalls'])} "
          f"firewall(s), {len(topo['management_hosts'])} management host(s), {len(topo['traffic'])} flow(s))")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import yaml

    from .topology import generate

    if args.links < 1:
        raise CliError("generate: N must be at least 1")
    try:
        data = generate(args.links, healthy=args.healthy, firewalls=args.firewalls)
    except ValueError as exc:
        raise CliError(f"generate: {exc}") from None
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.output} ({args.links} links{', healthy' if args.healthy else ''})")
    else:
        sys.stdout.write(text)
    return 0


def cmd_scripts_refresh(_args: argparse.Namespace) -> int:
    from .handler import write_manifest

    old = _read_json(MANIFEST_PATH) or {}
    try:
        new = write_manifest(SCRIPTS_DIR, MANIFEST_PATH)
    except (OSError, ValueError) as exc:
        raise CliError(f"scripts-refresh: {exc}") from None
    changed = sorted(n for n in new if old.get(n) != new[n])
    removed = sorted(n for n in old if n not in new)
    print(f"{os.path.relpath(MANIFEST_PATH, REPO_ROOT)}: {len(new)} script(s); "
          f"changed: {', '.join(changed) or 'none'}; removed: {', '.join(removed) or 'none'}")
    if pid_alive(_read_pid(state_dir())):
        print("note: the running lab read the old manifest at start; `down` and `up` to use the new one")
    return 0


# ---- argument parsing -------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"xconlab: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="xconlab", description="Control the emulated Exchange 5.5 / Raptor lab.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    validate = sub.add_parser("validate", help="check a topology file (nothing is started)")
    validate.add_argument("topology", metavar="TOPOLOGY")
    validate.set_defaults(func=cmd_validate)
    up = sub.add_parser("up", help="start the lab in the background and write its inventory")
    up.add_argument("topology", metavar="TOPOLOGY")
    up.add_argument("--inventory", metavar="FILE", help=f"inventory to write (default {DEFAULT_INVENTORY})")
    up.add_argument("--time-scale", type=float, metavar="S",
                    help="emulated seconds per wall-clock second (overrides the topology; 0 = frozen)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the lab").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="endpoints and emulated time")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    advance = sub.add_parser("advance", help="run the model for MINUTES emulated minutes")
    advance.add_argument("minutes", type=int, metavar="MINUTES")
    advance.set_defaults(func=cmd_advance)
    sub.add_parser("snapshot", help="the whole state as JSON").set_defaults(func=cmd_snapshot)
    for command, role, record in (("firewall", "the firewall operator", "a firewall change record"),
                                  ("admin", "the operator at the Exchange Administrator program",
                                   "an Exchange Administrator change record")):
        operator = sub.add_parser(command, help=f"act as {role}")
        operator_sub = operator.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
        operator_sub.required = True
        apply = operator_sub.add_parser("apply", help=f"carry out {record} (JSON)")
        apply.add_argument("file", metavar="FILE")
        apply.set_defaults(func=cmd_firewall, command=command)
    fault = sub.add_parser("fault", help="inject a fault on one emulated host")
    fault.add_argument("server", metavar="SERVER")
    fault.add_argument("kind", metavar="KIND", choices=list(ctl.FAULT_KINDS) + ["clear"])
    fault.add_argument("args", metavar="ARG", nargs="*")
    fault.set_defaults(func=cmd_fault)
    sub.add_parser("stats", help="per endpoint counters (JSON)").set_defaults(func=cmd_stats)
    generate = sub.add_parser("generate", help="write an N-link topology")
    generate.add_argument("links", type=int, metavar="N")
    generate.add_argument("--healthy", action="store_true", help="a working firewall set-up instead of the KB's")
    generate.add_argument("--firewalls", type=int, default=1, metavar="K",
                          help="spread the links over K firewalls (default 1)")
    generate.add_argument("-o", "--output", metavar="FILE")
    generate.set_defaults(func=cmd_generate)
    sub.add_parser("scripts-refresh", help="rewrite known_scripts.json from files/ps").set_defaults(
        func=cmd_scripts_refresh)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        sys.stderr.write(f"xconlab: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("xconlab: error: interrupted\n")
        return 130
    except Exception as exc:  # anything else still ends as one line
        message = " ".join(str(exc).split())
        sys.stderr.write(f"xconlab: error: {type(exc).__name__}: {message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
