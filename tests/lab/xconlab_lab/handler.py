"""The WinRM command handler of the emulated Windows hosts.

The WS-Management server (``wsman.py``) hands every finished WinRS command to a handler
``handler(endpoint_name, username, command_line, stdin) -> (stdout, stderr, exit_code)``.
This module provides the lab's handler. It plays, in this order:

* **cmd.exe** - a command line over 8191 characters fails with "The command line is too long.";
  anything that is not a PowerShell invocation fails with "'X' is not recognized as an internal or
  external command, operable program or batch file." (exit 1).
* **powershell.exe** - only the project's fixed bootstrap command line is run (its
  ``-EncodedCommand`` script is recognised by the SHA-256 of its text against
  ``known_scripts.json``); any other script, or a modified known one, fails with a PowerShell
  CLIXML error on stderr (exit 1). The lab never pretends to run a script it does not know.
* **bootstrap.ps1 / runner.ps1** - stdin is split on four NULs: part 0 must be the shipped runner,
  the middle parts shipped libraries (``# xcon-lib: NAME``, which the runner dot-sources; the lab
  only requires the JSON one) and op scripts (both recognised by SHA-256), the last part the request
  JSON. The ops are then executed in order through ``lab.execute_op`` and the answer is the
  runner's JSON document (``docs/design.md`` "Wire protocol"), exit 0. Request-level problems the
  real runner reports (bad JSON, a part that is neither a library nor an op script, no JSON
  library) are reported the way it does:
  one plain line on stderr, exit 1.

Known scripts are identified by ``sha256(text.encode("utf-8"))`` of the exact file text; the
manifest ``{"bootstrap.ps1": "<hex>", ...}`` is rewritten on purpose only, by
``xconlab scripts-refresh`` (:func:`write_manifest`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import shlex
import threading
from typing import Callable, Dict, List, Optional, Tuple

from . import psjson

LOG = logging.getLogger("xconlab.handler")

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(PACKAGE_DIR)))
MANIFEST_PATH = os.path.join(PACKAGE_DIR, "known_scripts.json")
SCRIPTS_DIR = os.path.join(REPO_ROOT, "files", "ps")

PART_SEPARATOR = "\0\0\0\0"
CMD_LINE_LIMIT = 8191
BOOTSTRAP = "bootstrap.ps1"
RUNNER = "runner.ps1"
OP_HEADER = re.compile(r"^# xcon-op: ([a-z_]+)$")
LIB_HEADER = re.compile(r"^# xcon-lib: ([a-z_]+)$")
# HRESULT of a .NET exception without a more specific one (COR_E_EXCEPTION): what the runner
# reports when an op fails for a reason it has no category for.
GENERIC_HRESULT = 0x80131500
# The categories each op script raises itself (New-XconError in the op or the runner functions it
# calls: a refused parameter, a value that is not hex, op_service's own mapping); the runner reports
# them. Every other failure goes as the .NET exception it is (type, HRESULT, native Win32 error) and
# the controller decides what it means. tests/unit/test_script_contract.py reads the scripts and
# holds this table to them.
OWN_CATEGORIES = {
    "dir_create": ("InvalidParameter", "InvalidSyntax"), "dir_delete": ("InvalidParameter",),
    "dir_modify": ("InvalidParameter", "InvalidSyntax"), "dir_root": ("InvalidParameter",),
    "dir_search": ("InvalidParameter", "InvalidSyntax"), "event_query": ("InvalidParameter",),
    "perf_counters": ("InvalidParameter",), "reg_read": ("InvalidParameter",),
    "service": ("AccessDenied", "InvalidParameter", "ServiceError"), "tcp_probe": ("InvalidParameter",),
}

HandlerResult = Tuple[bytes, bytes, int]


# ---- the manifest of known scripts ------------------------------------------------------------
def script_hash(text: str) -> str:
    """SHA-256 (hex) of a script's exact text, as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_script(path: str) -> str:
    """A script's exact text (no newline translation, a BOM would be kept)."""
    with open(path, "r", encoding="utf-8", newline="") as handle:
        return handle.read()


def compute_manifest(scripts_dir: str = SCRIPTS_DIR) -> Dict[str, str]:
    """``{file name: sha256}`` for every ``*.ps1`` in ``scripts_dir``, sorted by name."""
    names = sorted(n for n in os.listdir(scripts_dir) if n.endswith(".ps1"))
    return {name: script_hash(read_script(os.path.join(scripts_dir, name))) for name in names}


def write_manifest(scripts_dir: str = SCRIPTS_DIR, path: str = MANIFEST_PATH) -> Dict[str, str]:
    """Rewrite the manifest from the shipped scripts (``xconlab scripts-refresh``)."""
    manifest = compute_manifest(scripts_dir)
    if BOOTSTRAP not in manifest or RUNNER not in manifest:
        raise ValueError(f"{scripts_dir} has no {BOOTSTRAP} and {RUNNER}: refusing to write the manifest")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)
    return manifest


def load_manifest(path: str = MANIFEST_PATH) -> Dict[str, str]:
    """The manifest as written by :func:`write_manifest`."""
    with open(path, "r", encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of file name -> sha256")
    return data


# ---- Windows-looking failures -----------------------------------------------------------------
def _clixml_error(text: str) -> bytes:
    """PowerShell's CLIXML error stream (the WS-Management server's rendering)."""
    from .wsman import clixml_error  # imported late: wsman pulls in the TLS/NTLM machinery

    return clixml_error(text)


def not_recognized(command_line: str) -> HandlerResult:
    """cmd.exe's answer to a command it cannot find."""
    try:
        words = shlex.split(command_line, posix=False)
    except ValueError:
        words = command_line.split()
    word = words[0].strip('"') if words else command_line.strip()
    text = f"'{word}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    return b"", text.encode("utf-8"), 1


def powershell_error(text: str) -> HandlerResult:
    """A terminating PowerShell error: CLIXML on stderr, exit 1."""
    return b"", _clixml_error(text), 1


def runner_failure(text: str) -> HandlerResult:
    """The runner's own 'cannot run the request' exit: one plain line on stderr, exit 1."""
    return b"", (text + "\r\n").encode("utf-8"), 1


def _format_hresult(value) -> str:
    """HRESULT as the runner writes it: ``0x`` and eight upper-case hex digits."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return text
    return "0x%08X" % (int(value) & 0xFFFFFFFF)


def runner_error(exc, op: str = "") -> dict:
    """What runner.ps1's Get-XconFailure writes for a failure: the innermost exception's type,
    HRESULT and native Win32 error; the category only when the op script raised it itself."""
    kind = getattr(exc, "type", None)
    category = str(getattr(exc, "category", "") or "")
    own = OWN_CATEGORIES.get(op, ("InvalidParameter",))
    return {"category": category if kind is None and category in own else None,
            "type": kind or "System.Runtime.InteropServices.COMException",
            "hresult": _format_hresult(getattr(exc, "hresult", GENERIC_HRESULT)),
            "native_error": getattr(exc, "native", None),
            "message": str(getattr(exc, "message", exc)).strip()}


def _is_encoded_command_flag(word: str) -> bool:
    """``-EncodedCommand`` or one of the abbreviations powershell.exe accepts (-e, -ec, -enc...)."""
    flag = word.lower().lstrip("-/")
    if not word[:1] in "-/" or not flag:
        return False
    return flag in ("e", "ec") or (len(flag) >= 3 and "encodedcommand".startswith(flag))


# ---- the handler ------------------------------------------------------------------------------
class CommandHandler:
    """Callable given to ``WsmanServer``; runs the project's scripts against the lab model.

    ``lab`` needs ``execute_op(endpoint_name, username, op, params)`` raising an exception with
    ``category``, ``hresult`` and ``message`` attributes (``model.OpError``) on failure.
    """

    def __init__(self, lab, manifest: Optional[Dict[str, str]] = None,
                 op_error: Optional[type] = None) -> None:
        self.lab = lab
        self.manifest = dict(manifest if manifest is not None else load_manifest())
        for required in (BOOTSTRAP, RUNNER):
            if required not in self.manifest:
                raise ValueError(f"known_scripts.json has no {required}: run xconlab scripts-refresh")
        self.by_hash = {digest: name for name, digest in self.manifest.items()}
        self._local = threading.local()     # the logon of the command a worker thread runs
        if op_error is None:
            from .model import OpError as op_error  # noqa: N813 - the model's exception class
        self.op_error = op_error

    # The WsmanServer calls the handler from its worker threads; the handler keeps no state per
    # call, and the model has its own lock.
    takes_logon = True   # the WsmanServer passes the logon of the command's shell (second hop)

    def __call__(self, endpoint_name: str, username: str, command_line: str, stdin: bytes,
                 logon=None) -> HandlerResult:
        self._local.logon = logon
        try:
            return self._run(endpoint_name, username, command_line, stdin or b"")
        except Exception as exc:  # a lab bug must not look like success, nor kill the server
            LOG.exception("handler failed on %s", endpoint_name)
            return powershell_error(f"xconlab internal error: {type(exc).__name__}: {exc}")

    def _run(self, endpoint_name: str, username: str, command_line: str, stdin: bytes) -> HandlerResult:
        if len(command_line) > CMD_LINE_LIMIT:
            return b"", b"The command line is too long.\r\n", 1
        script = self._powershell_script(command_line)
        if script is None:
            return not_recognized(command_line)
        if isinstance(script, tuple):  # (error text,) for a PowerShell invocation we cannot run
            return powershell_error(script[0])
        if self.by_hash.get(script_hash(script)) != BOOTSTRAP:
            return powershell_error(
                "The script sent with -EncodedCommand is not one this emulated host knows "
                f"(sha256 {script_hash(script)}); the lab runs only the shipped fix-xcon scripts "
                "(tests/lab/xconlab_lab/known_scripts.json).")
        return self._bootstrap(endpoint_name, username, stdin)

    def _powershell_script(self, command_line: str):
        """The script text of a ``powershell -EncodedCommand`` line; None if not PowerShell at all;
        a 1-tuple with an error text for a PowerShell line the lab cannot run."""
        words = command_line.split()
        if not words:
            return None
        program = words[0].strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower()
        if program not in ("powershell", "powershell.exe"):
            return None
        encoded = None
        for index, word in enumerate(words[1:], start=1):
            if _is_encoded_command_flag(word):
                encoded = words[index + 1] if index + 1 < len(words) else ""
                break
        if encoded is None:
            return ("This emulated host runs only the fix-xcon bootstrap (powershell.exe ... -EncodedCommand); "
                    "the command given is not a script the lab knows.",)
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return ("Cannot process the command because the value specified with -EncodedCommand is not "
                    "properly encoded. The value must be Base64 encoded.",)

    def _bootstrap(self, endpoint_name: str, username: str, stdin: bytes) -> HandlerResult:
        try:
            text = stdin.decode("utf-8")
        except UnicodeDecodeError as exc:
            return powershell_error(f"The input on stdin is not UTF-8 text: {exc}")
        parts = text.split(PART_SEPARATOR)
        if self.by_hash.get(script_hash(parts[0])) != RUNNER:
            return powershell_error(
                "Payload part 0 is not the shipped runner.ps1 (sha256 "
                f"{script_hash(parts[0])}); the lab runs only known scripts. If the change is intended, "
                "run tests/lab/xconlab scripts-refresh.")
        # Every library and op script part must be a known, unmodified script.
        for index, part in enumerate(parts[1:-1], start=1):
            if script_hash(part) not in self.by_hash:
                header = part.split("\n", 1)[0].strip()[:80]
                return powershell_error(
                    f"Payload part {index} ({header!r}) is not a script this emulated host knows "
                    f"(sha256 {script_hash(part)}); if the change is intended, run "
                    "tests/lab/xconlab scripts-refresh.")
        # Windows PowerShell 2.0 needs only .NET 2.0: a runner that uses .NET 3.5's JSON serializer
        # stops on a host without it, the way PowerShell reports a type it cannot find.
        has_35 = getattr(self.lab, "host_has_dotnet35", None)
        if has_35 is not None and not has_35(endpoint_name) and any(
                "System.Web.Script.Serialization" in part for part in parts[:-1]):
            return runner_failure("xcon runner cannot run the request: Cannot find type "
                                  "[System.Web.Script.Serialization.JavaScriptSerializer]: make sure the "
                                  "assembly containing this type is loaded.")
        return self._runner(endpoint_name, username, parts)

    # ---- what runner.ps1 does ---------------------------------------------------------------
    def _runner(self, endpoint_name: str, username: str, parts: List[str]) -> HandlerResult:
        prefix = "xcon runner cannot run the request: "
        if len(parts) < 2:
            return runner_failure(prefix + "the payload has no request part")
        # The runner dot-sources the libraries (nothing else to emulate) and keeps the op scripts,
        # then needs its JSON library to read the request.
        scripts: Dict[str, str] = {}
        libraries = set()
        for index, part in enumerate(parts[1:-1], start=1):
            first_line = part.split("\n", 1)[0].strip()
            library, match = LIB_HEADER.match(first_line), OP_HEADER.match(first_line)
            if library:
                libraries.add(library.group(1))
            elif match:
                scripts[match.group(1)] = part
            else:
                return runner_failure(prefix + f"payload part {index} is neither a library nor an op script")
        if "json" not in libraries:
            return runner_failure(prefix + "the payload has no JSON library part (# xcon-lib: json)")
        try:
            request = psjson.read(parts[-1])       # as lib_json.ps1 reads it
        except ValueError as exc:
            return runner_failure(prefix + str(exc))
        if not isinstance(request, dict) or request.get("version") != 1:
            return runner_failure(prefix + 'unsupported request: expected {"version": 1, ...}')
        stop_on_error = bool(request.get("stop_on_error", True))
        ops = request.get("ops") or []
        if not isinstance(ops, list):
            ops = [ops]

        results = []
        failed = False
        for op in ops:
            op = op if isinstance(op, dict) else {}
            op_id = "" if op.get("id") is None else str(op.get("id"))
            if failed and stop_on_error:
                results.append({"id": op_id, "ok": False, "skipped": True})
                continue
            name = "" if op.get("op") is None else str(op.get("op"))
            params = op.get("params")
            if params is None:
                params = {}
            if name not in scripts:
                error = {"category": "InvalidParameter", "hresult": "0x80070057",
                         "message": f"op '{name}' was not sent with the request"}
                results.append({"id": op_id, "ok": False, "error": error})
                failed = True
                continue
            try:
                data = self.lab.execute_op(endpoint_name, username, name, params,
                                           logon=getattr(self._local, "logon", None))
                results.append({"id": op_id, "ok": True, "data": data})
            except self.op_error as exc:
                results.append({"id": op_id, "ok": False, "error": runner_error(exc, name)})
                failed = True
            except Exception as exc:  # a model bug: report it the way the runner reports the unexpected
                LOG.exception("op %s on %s failed unexpectedly", name, endpoint_name)
                results.append({"id": op_id, "ok": False, "error": {
                    "category": None, "type": "System.Exception", "hresult": _format_hresult(GENERIC_HRESULT),
                    "native_error": None, "message": f"{type(exc).__name__}: {exc}"}})
                failed = True
        answer = json.dumps({"version": 1, "results": results}, ensure_ascii=True, separators=(",", ":"))
        return answer.encode("ascii"), b"", 0


def make_handler(lab, manifest_path: str = MANIFEST_PATH) -> Callable[[str, str, str, bytes], HandlerResult]:
    """The handler for ``WsmanServer``, with the manifest read once at start."""
    return CommandHandler(lab, load_manifest(manifest_path))
