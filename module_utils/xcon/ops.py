"""Build the operation payload from files/ps/*.ps1, send it, and decode the answers.

Wire format (docs/design.md, "Wire protocol"):

* command line: ``powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand B64``
  with B64 = base64(UTF-16LE(exact text of files/ps/bootstrap.ps1)); fixed, the lab recognises it;
* stdin: ASCII text of the parts joined by four NULs: runner.ps1, every library ``lib_<name>.ps1``
  (first line ``# xcon-lib: <name>``; the runner dot-sources them), each needed ``op_<name>.ps1``
  once (in order of first use), then the request JSON ``{"version": 1, "stop_on_error": ..., "ops": [...]}``.
  The request JSON is written with ``ensure_ascii=True`` (non-ASCII such as the Connected-Domains
  separator U+00A7 travels as ``\\u00a7``), so stdin is pure ASCII;
* stdout: one JSON document ``{"version": 1, "results": [...]}``; rc 1 + stderr (CLIXML or text)
  when the runner could not run at all.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from xcon.errors import ACCESS_DENIED, CATEGORY_HINTS, UNREACHABLE, UNREACHABLE_CATEGORY, XconError, op_category

OPS_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "files", "ps"))
BOOTSTRAP = "bootstrap.ps1"
RUNNER = "runner.ps1"
SEPARATOR = "\0\0\0\0"
POWERSHELL = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
MAX_COMMAND_LINE = 8191
PROTOCOL_VERSION = 1


class OpFailed(XconError):
    """An operation ran and failed on the host (a design error category and HRESULT).

    The runner's error category is part of the wire protocol (docs/design.md): `AccessDenied`
    makes the exception an `OpAccessDenied` (report code XCON-ACCESS-DENIED) and
    `ServerUnavailable` an `OpUnreachable` (XCON-UNREACHABLE: the server cannot be reached from the
    host the op ran on) wherever it is raised; every other category stays XCON-OPERATION-FAILED."""

    def __new__(cls, category=None, *args, **kwargs):
        if cls is OpFailed and category == "AccessDenied":
            cls = OpAccessDenied
        elif cls is OpFailed and category == UNREACHABLE_CATEGORY:
            cls = OpUnreachable
        return super().__new__(cls, category, *args)

    def __init__(self, category: str, hresult: str | None, message: str, op_id: str | None = None, op: str | None = None):
        self.category = category or "OperationFailed"
        self.hresult = hresult
        self.message = message or ""
        self.op_id = op_id
        self.op = op
        where = f"{op} " if op else ""
        hint = f"; {CATEGORY_HINTS[self.category]}" if self.category in CATEGORY_HINTS else ""
        super().__init__(f"{where}failed: {self.category} ({hresult}): {self.message}{hint}".strip())


class OpAccessDenied(OpFailed):
    """The host refused the operation to this account (runner category AccessDenied)."""

    report_code = ACCESS_DENIED


class OpUnreachable(OpFailed):
    """The server the op acts on could not be reached from the host it ran on (network path not
    found, RPC server unavailable, LDAP server down)."""

    report_code = UNREACHABLE


class RunnerError(XconError):
    """The host could not run the request at all (rc != 0, or no valid JSON answer)."""

    def __init__(self, message: str, rc: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.rc = rc
        self.stderr = stderr


@dataclass
class OpResult:
    """The answer to one operation of a request."""

    id: str
    ok: bool
    data: Any = None
    error_category: str | None = None
    hresult: str | None = None
    message: str | None = None
    error_type: str | None = None          # the innermost .NET exception's type, as the runner saw it
    native_error: int | None = None        # its Win32 error (Win32Exception.NativeErrorCode), if any
    skipped: bool = False
    op: str | None = field(default=None, compare=False)

    def raise_for_error(self, context: str | None = None):
        """Return `data`, or raise OpFailed (a skipped op raises with category 'Skipped').

        The one way an operation's failure becomes an exception (its type, and so its report
        code, follows the runner's category: see OpFailed); `context` prefixes the message."""
        if self.ok:
            return self.data
        message = f"{context}: {self.message}" if context else self.message
        if self.skipped:
            raise OpFailed("Skipped", None, "not run because an earlier operation failed", self.id, self.op)
        raise OpFailed(self.error_category, self.hresult, message, self.id, self.op)


# -- scripts -------------------------------------------------------------------------------------
# The shipped scripts do not change while the controller runs: each file is read, and the directory
# listed, once per process.  A fleet task builds one request per host from many threads, and every
# read or listing there was a system call that gave up the interpreter lock and waited to take it
# back behind the other threads (README "Performance").  Keyed by OPS_DIR as well, so a test that
# points OPS_DIR elsewhere reads that directory.
_SCRIPTS: dict[tuple[str, str], str] = {}
_LISTINGS: dict[str, tuple[str, ...]] = {}


def _read_script(filename: str) -> str:
    key = (OPS_DIR, filename)
    text = _SCRIPTS.get(key)
    if text is None:
        with open(os.path.join(OPS_DIR, filename), "rb") as handle:
            text = _SCRIPTS[key] = handle.read().decode("utf-8")
    return text


def _listing() -> tuple[str, ...]:
    names = _LISTINGS.get(OPS_DIR)
    if names is None:
        names = _LISTINGS[OPS_DIR] = tuple(sorted(os.listdir(OPS_DIR)))
    return names


def library_files() -> list[str]:
    """The runner's libraries shipped in files/ps (lib_<name>.ps1), sent with every request."""
    return [f for f in _listing() if f.startswith("lib_") and f.endswith(".ps1")]


def op_names() -> list[str]:
    """The op names shipped in files/ps (op_<name>.ps1)."""
    return sorted(f[3:-4] for f in _listing() if f.startswith("op_") and f.endswith(".ps1"))


def command_line() -> str:
    """The fixed command line: PowerShell running bootstrap.ps1 as -EncodedCommand."""
    encoded = base64.b64encode(_read_script(BOOTSTRAP).encode("utf-16-le")).decode("ascii")
    line = POWERSHELL + encoded
    if len(line) >= MAX_COMMAND_LINE:  # pragma: no cover - guarded by a unit test
        raise ValueError(f"bootstrap command line is {len(line)} characters (limit {MAX_COMMAND_LINE})")
    return line


def build_request(ops: list[dict], stop_on_error: bool = True) -> dict:
    """The request document; ops are {"op", "params", "id"?}; ids default to "1", "2", ..."""
    known = set(op_names())
    items, seen = [], set()
    for index, op in enumerate(ops, start=1):
        name = op.get("op")
        if name not in known:
            raise ValueError(f"unknown op {name!r}; shipped: {sorted(known)}")
        op_id = str(op.get("id", index))
        if op_id in seen:
            raise ValueError(f"duplicate op id {op_id!r}")
        seen.add(op_id)
        params = op.get("params") or {}
        check_params(name, params)
        items.append({"id": op_id, "op": name, "params": params})
    return {"version": PROTOCOL_VERSION, "stop_on_error": bool(stop_on_error), "ops": items}


# Parameters a write op refuses empty: an empty dn or parent binds LDAP://SERVER, the server's root.
WRITE_TARGETS = {"dir_modify": ("dn",), "dir_delete": ("dn",), "dir_create": ("parent", "cn")}
INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _readable(value, where: str):
    """Refuse what the runner's JSON reader (lib_json.ps1) cannot read back as sent: a number that is
    not finite or an integer beyond Int64 (it would arrive as a Double), a key that is not text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{where}: {value} is beyond a 64-bit integer")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: {value} is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: member name {key!r} is not text")
            _readable(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _readable(item, f"{where}[{index}]")
    else:
        raise ValueError(f"{where}: {type(value).__name__} is not JSON")


def check_params(op: str, params: dict):
    """Refuse, before anything is sent, an op the host could only get wrong: an empty dn / parent /
    cn of a write (the script refuses it too), a modify that changes one attribute twice or a create
    that names one twice (LDAP names ignore case: ADSI would keep the last, the report would list
    both), and values the script's JSON reader cannot read back (`_readable`)."""
    for name in WRITE_TARGETS.get(op, ()):
        if not isinstance(params.get(name), str) or not params[name].strip():
            raise ValueError(f"{op}: '{name}' must be a non-empty string, not {params.get(name)!r}")
    names = []
    if op == "dir_modify":
        names = [str(c.get("attribute", "")) for c in params.get("changes") or [] if isinstance(c, dict)]
    elif op == "dir_create":
        names = [str(k) for k in params.get("attributes") or {}]
    folded = [n.casefold() for n in names]
    twice = sorted({n for n in names if folded.count(n.casefold()) > 1})
    if twice:
        raise ValueError(f"{op} {params.get('dn') or params.get('cn')}: attribute {', '.join(twice)} given "
                         "more than once (one change per attribute)")
    _readable(params, f"{op} params")


def build_payload(ops: list[dict], stop_on_error: bool = True) -> tuple[str, bytes]:
    """(command_line, stdin bytes) for one request; each needed op script is included once."""
    request = build_request(ops, stop_on_error)
    needed = []
    for item in request["ops"]:
        if item["op"] not in needed:
            needed.append(item["op"])
    parts = [_read_script(RUNNER)]
    parts += [_read_script(name) for name in library_files()]
    parts += [_read_script(f"op_{name}.ps1") for name in needed]
    parts.append(json.dumps(request, ensure_ascii=True, separators=(",", ":"), allow_nan=False))
    # ASCII both ways: the scripts are ASCII (a unit test checks) and the request escapes the rest.
    return command_line(), SEPARATOR.join(parts).encode("ascii")


# -- answers -------------------------------------------------------------------------------------
_CLIXML_STRING = re.compile(r"<S S=\"Error\">(.*?)</S>", re.S)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_clixml(text: str) -> str:
    """PowerShell's CLIXML error stream -> plain text; other text is returned stripped."""
    if not text.lstrip().startswith("#< CLIXML"):
        return text.strip()
    pieces = []
    for raw in _CLIXML_STRING.findall(text):
        value = html.unescape(raw)
        value = _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
        pieces.append(value)
    joined = "".join(pieces).replace("\r\n", "\n").strip()
    return joined or text.strip()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def parse_output(rc: int, stdout, stderr) -> list[OpResult]:
    """Decode the runner's answer into OpResults; raise RunnerError when there is none."""
    out, err = _text(stdout), decode_clixml(_text(stderr))
    if rc != 0:
        raise RunnerError(f"the host could not run the operations (exit {rc}): {err or out.strip() or 'no output'}", rc, err)
    try:
        document = json.loads(out.lstrip("\ufeff").strip())
    except ValueError as exc:
        raise RunnerError(f"the host's answer is not JSON: {out[:200]!r} {err[:200]}", rc, err) from exc
    if not isinstance(document, dict) or document.get("version") != PROTOCOL_VERSION or not isinstance(document.get("results"), list):
        raise RunnerError(f"unexpected answer document: {out[:200]!r}", rc, err)
    results = []
    for item in document["results"]:
        error = item.get("error") or {}
        results.append(
            OpResult(
                id=str(item.get("id")),
                ok=bool(item.get("ok")),
                data=item.get("data"),
                error_category=op_category(error) if error else None,
                hresult=error.get("hresult"),
                message=error.get("message"),
                error_type=error.get("type"),
                native_error=error.get("native_error"),
                skipped=bool(item.get("skipped", False)),
            )
        )
    return results


# Ops that reach the Exchange server from the host they run on (through a management host, a
# second machine): explicit credentials for that server go with them. The remote registry (the MTA's
# "RFC1006 Port Number") is one of them: without the IPC$ session of these credentials an NT 4.0
# server sees an anonymous logon and denies the read.
TARGET_OPS = ("dir_root", "dir_search", "dir_modify", "dir_create", "dir_delete", "event_query", "perf_counters",
              "service", "reg_read")


def with_target_credentials(ops: list[dict], credentials) -> list[dict]:
    """`ops` with `target_user`/`target_password` in the params of every op that reaches the
    server (an authenticated LDAP bind; an IPC$ session for event log, counters and services)."""
    if not credentials or not credentials[0]:
        return ops
    user, password = credentials
    out = []
    for op in ops:
        if op.get("op") in TARGET_OPS:
            op = dict(op, params=dict(op.get("params") or {}, target_user=user, target_password=password or ""))
        out.append(op)
    return out


def run_ops(client, ops: list[dict], stop_on_error: bool = True) -> list[OpResult]:
    """Send ops as one WinRM command; return one OpResult per op, in request order. A client with
    `target_credentials` (user, password) sends them with every op that reaches the server."""
    ops = with_target_credentials(ops, getattr(client, "target_credentials", None))
    request = build_request(ops, stop_on_error)
    command, stdin = build_payload(ops, stop_on_error)
    rc, stdout, stderr = client.run(command, stdin)
    results = {r.id: r for r in parse_output(rc, stdout, stderr)}
    ordered = []
    for item in request["ops"]:
        result = results.get(item["id"])
        if result is None:
            raise RunnerError(f"the host's answer has no result for op {item['id']} ({item['op']})", rc)
        result.op = item["op"]
        ordered.append(result)
    return ordered


def raise_first_failure(results, context: str | None = None):
    """Raise OpFailed for the first failed op (one that ran before one that was skipped); return
    `results` (a list of OpResult, or a dict of them by id) when all succeeded."""
    items = list(results.values()) if isinstance(results, dict) else list(results)
    for result in items:
        if not result.ok and not result.skipped:
            result.raise_for_error(context)
    for result in items:
        if not result.ok:
            result.raise_for_error(context)
    return results
