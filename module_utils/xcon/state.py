"""The toolkit's files on the controller: one owner for everything fix-xcon keeps between tasks and runs.

* atomic JSON writes (temporary file + rename, so a reader never sees half a file);
* checksums: a ``<file>.sha256`` sidecar in ``sha256sum`` format, written with the file and verified
  before the file is trusted (backups, the change journal, the plan rollback reads);
* the state directory (``xcon_state_dir``; its default is :func:`default_state_dir`, nowhere else);
* per-server MTA restart markers (``<state dir>/restart-pending/<host>``): written with a change
  that needs a restart, removed by the restart, so an interrupted run's restart is not lost;
* per-server verified-change times (``<state dir>/evidence-baseline.json``);
* the run's change journal (``<run dir>/journal/<host>.json``): what each write changed, attribute by
  attribute, before and after, recorded before the write is sent (rollback restores from it);
* the run lock lives beside them (``<state dir>/lock/``) and has its own module, xcon.runlock.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import tempfile

RESTART_DIR = "restart-pending"
BASELINE_FILE = "evidence-baseline.json"


class StateError(Exception):
    """A state file is missing, damaged or in use."""


def _beside_config(config_file=None):
    """The directory of ansible.cfg (the working directory without one): relative paths start there."""
    return os.path.dirname(os.path.abspath(config_file)) if config_file else os.getcwd()


def default_state_dir(config_file=None):
    """``xcon_state_dir`` when the operator sets none: ``reports/state`` beside ansible.cfg."""
    return os.path.join(_beside_config(config_file), "reports", "state")


def report_root(report_dir, config_file=None):
    """The reports directory (``xcon_report_dir``): itself when absolute, else beside ansible.cfg."""
    return report_dir if os.path.isabs(report_dir) else os.path.join(_beside_config(config_file), report_dir)


def now_utc():
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- files ------------------------------------------------------------------------------------------
def _dumps(data, compact=False):
    # compact: one line, by json's C encoder (indent makes json use its pure-Python one, about 3x
    # slower) - for the files only the toolkit reads back, written once per server in a fleet task
    if compact:
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_text_atomic(path, text, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path, data, mode=0o644, checksum=False, compact=False):
    """Write `data` as JSON atomically; with `checksum`, also its ``.sha256`` sidecar; `compact`:
    on one line (files the toolkit reads back, not the ones an operator reads)."""
    write_checked_text(path, _dumps(data, compact), mode, checksum)


def write_checked_text(path, text, mode=0o644, checksum=False):
    """Write `text` atomically; with `checksum`, also its ``.sha256`` sidecar."""
    write_text_atomic(path, text, mode)
    if checksum:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        write_text_atomic(checksum_path(path), f"{digest}  {os.path.basename(path)}\n", mode)


class DamagedFile(StateError, ValueError):
    """A state file that is not the JSON its writer writes (a ValueError too, for older callers)."""


def read_json(path, default=None):
    if not path or not os.path.exists(path):
        return default
    with open(path, "rb") as handle:
        return _parse_json(path, handle.read())


def _parse_json(path, data):
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise DamagedFile(f"{path} is damaged (not JSON: {exc}); restore it or remove it if it holds nothing "
                          "you need") from None


def checksum_path(path):
    return path + ".sha256"


def verify_checksum(path):
    """Raise StateError unless `path` matches the SHA-256 recorded when it was written; return the
    bytes it checked (read once: read_verified_json parses them)."""
    sidecar = checksum_path(path)
    if not os.path.exists(path):
        raise StateError(f"{path} is missing")
    if not os.path.exists(sidecar):
        raise StateError(f"{path} has no checksum ({os.path.basename(sidecar)} is missing): it cannot be trusted")
    with open(sidecar, encoding="utf-8") as handle:
        recorded = (handle.read().split() or [""])[0].lower()
    with open(path, "rb") as handle:
        data = handle.read()
    actual = hashlib.sha256(data).hexdigest()
    if recorded != actual:
        raise StateError(f"{path} does not match its checksum (SHA-256 {actual}, recorded {recorded or 'nothing'}): "
                         "the file was changed or truncated after it was written")
    return data


def copy_verified(source, target, mode=0o600):
    """Copy `source` (which must match its checksum) to `target` atomically, with its own sidecar."""
    write_checked_text(target, verify_checksum(source).decode("utf-8"), mode, checksum=True)


def read_verified_json(path):
    # the bytes that matched the checksum, parsed (not read a second time); checksum matched but
    # the writer wrote garbage: DamagedFile names it
    return _parse_json(path, verify_checksum(path))


# -- restart markers --------------------------------------------------------------------------------
def restart_marker(state_dir, host):
    return os.path.join(state_dir, RESTART_DIR, host)


def note_restart(marker, what):
    """Remember that a change on this server needs an MTA restart (survives an interrupted run)."""
    os.makedirs(os.path.dirname(os.path.abspath(marker)), exist_ok=True)
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(f"{what}\n")


def restart_pending(marker):
    return bool(marker) and os.path.exists(marker)


def clear_restart(marker):
    with contextlib.suppress(FileNotFoundError):
        if marker:
            os.unlink(marker)


# -- verified-change times --------------------------------------------------------------------------
def evidence_baseline(path, server):
    """The server's clock time of the last verified change (written by xcon_verify), or None."""
    return (read_json(path, {}) or {}).get(server.upper())


def record_baseline(path, times):
    """Remember, per server (upper-case name), the server time at which a change was verified."""
    current = read_json(path, {}) or {}
    current.update({k.upper(): v for k, v in times.items()})
    write_json_atomic(path, current)


# -- the change journal -----------------------------------------------------------------------------
def journal_path(run_dir, host):
    return os.path.join(run_dir, "journal", f"{host}.json")


def journal_append(path, entry):
    """Add one write to a host's journal (before it is sent: a write that then fails is harmless,
    rollback finds the object as it was).  One host's tasks run one after another."""
    entries = read_verified_json(path) if os.path.exists(path) else []
    entries.append(entry)
    write_json_atomic(path, entries, mode=0o600, checksum=True)


# -- runs under the report directory ----------------------------------------------------------------
def run_directory(report_dir, run_id):
    """The directory of run `run_id` under `report_dir`, checked: a plain directory name (no path
    separator, no '..', not absolute, not 'latest') that exists.  Raises StateError saying why."""
    run_id = str(run_id or "").strip()
    hint = f"give the name of a run directory under {report_dir} (like 20261128T175622Z-94fe49)"
    if not run_id:
        raise StateError(f"no run id: {hint}")
    if os.path.isabs(run_id) or "/" in run_id or "\\" in run_id or run_id in (".", "..") or ".." in run_id or "\0" in run_id:
        raise StateError(f"{run_id!r} is not a run id (a path, or it contains '..'): {hint}")
    if run_id == "latest":
        raise StateError(f"'latest' holds only a copy of the last report, not a run: {hint}; the last run's id is run_id in {report_dir}/latest/report.json")
    root = os.path.realpath(report_dir)
    path = os.path.join(root, run_id)
    if os.path.dirname(os.path.realpath(path)) != root:
        raise StateError(f"{run_id!r} leads outside {report_dir} (a symbolic link?): {hint}")
    if not os.path.isdir(path):
        raise StateError(f"there is no run {run_id} under {report_dir}: {hint}")
    return path
