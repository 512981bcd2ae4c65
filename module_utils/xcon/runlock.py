"""The run lock: one changing run at a time per state directory; --check audits share it.

The kernel holds it: ``fcntl.flock`` on ``<state dir>/lock/run.lock``, exclusive for a run that
changes servers (and a rollback), shared for an audit.  A flock belongs to an open file description,
which every process that has a copy of the descriptor shares, and the kernel drops it when the last
copy is closed, i.e. when the last process of the run is gone.  So the run's main process must have
it: the action (in a forked worker) opens and locks the file and passes the descriptor to the
ansible-playbook process over a socket that process opened before it forked any worker (callback
plugin ``xcon_run_lock``, environment variable :data:`CHANNEL_ENV`).  Every worker forked after that
inherits it: a run killed with SIGKILL whose worker (ansible-core 2.19 workers call setsid) is
still writing keeps the lock until that worker ends too, and a dead run holds nothing.  No process
id is guessed and no file content decides anything.

Beside the lock, ``exclusive.json`` / ``shared-<run>-<pid>.json`` only describe the holders for
messages; a holder that ended without releasing leaves its description, which the next run to take
the lock reports and removes.  Damaged descriptions (a JSON list, garbage) are named in messages and
change nothing: the lock is the flock.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import glob
import json
import os
import socket
import time

from xcon import state as xstate

LOCK_DIR = "lock"
LOCK_FILE = "run.lock"
EXCLUSIVE = "exclusive"
SHARED = "shared"
# Set by the callback plugin in the ansible-playbook process: the descriptor of the socket over
# which a worker hands it the locked file (SCM_RIGHTS); and, once it has it, the descriptor itself.
CHANNEL_ENV = "XCON_RUN_LOCK_CHANNEL"
HELD_ENV = "XCON_RUN_LOCK_FD"


class LockBusy(xstate.StateError):
    """Another live run holds the lock."""


def lock_paths(state_dir):
    lock_dir = os.path.join(state_dir, LOCK_DIR)
    return lock_dir, os.path.join(lock_dir, LOCK_FILE)


def identity(run_id, mode, pid=None):
    """Who holds the lock, for messages only: the run, the controller, the ansible-playbook pid."""
    return {"run_id": run_id, "mode": mode, "host": socket.gethostname(), "pid": pid or os.getpid(), "since": xstate.now_utc()}


def _description_files(lock_dir):
    return sorted(glob.glob(os.path.join(lock_dir, f"{EXCLUSIVE}.json")) + glob.glob(os.path.join(lock_dir, f"{SHARED}-*.json")))


def _description(path):
    """(holder dict, None) or (None, why the file says nothing usable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.load(handle)
    except (OSError, ValueError) as exc:
        return None, f"{path} is unreadable ({exc.__class__.__name__}: {exc})"
    if not isinstance(holder, dict):
        return None, f"{path} holds a JSON {type(holder).__name__}, not a description"
    return holder, None


def describe(holder):
    what = "a --check audit" if holder.get("mode") == SHARED else "a changing run"
    return f"run {holder.get('run_id')} ({what}, pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"


def _holders_text(lock_dir):
    parts = []
    for path in _description_files(lock_dir):
        holder, problem = _description(path)
        parts.append(describe(holder) if holder else problem)
    return "; ".join(parts) or "a process that left no description"


def _own_file(lock_dir, run_id, mode, pid):
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(run_id)).lstrip(".")
    return os.path.join(lock_dir, f"{EXCLUSIVE}.json" if mode == EXCLUSIVE else f"{SHARED}-{safe}-{pid}.json")


def acquire(state_dir, run_id, mode=EXCLUSIVE, wait_seconds=0, pid=None, sleep=time.sleep, clock=time.monotonic):
    """Lock `state_dir` for this run; returns ``{"fd", "lock_file", "description", "mode", "waited",
    "stale", "holder"}`` (``fd``: the locked descriptor, close-on-exec, for :func:`hand_over`).

    Waits up to `wait_seconds` while another live run holds it, then raises LockBusy naming the
    lock file and what its holders' descriptions say."""
    lock_dir, path = lock_paths(state_dir)
    os.makedirs(lock_dir, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise xstate.StateError(f"the run lock {path} cannot be opened: {exc.strerror}") from None
    start = clock()
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if mode == EXCLUSIVE else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            waited = clock() - start
            if waited >= wait_seconds:
                os.close(fd)
                raise LockBusy(
                    f"another fix-xcon run holds the lock {path}: {_holders_text(lock_dir)}. "
                    + (f"Waited {int(waited)} s. " if wait_seconds else "")
                    + "Wait for it to finish (or give -e xcon_lock_wait_seconds=N to wait up to N seconds) and run again. "
                    "The lock is held by the kernel for as long as any process of that run lives (`fuser -v "
                    f"{path}` lists them); removing files does not free it.") from None
            sleep(min(2.0, max(0.1, wait_seconds - waited)))
    me = identity(run_id, mode, pid)
    stale = []
    for other in _description_files(lock_dir):
        if mode == SHARED and os.path.basename(other) != f"{EXCLUSIVE}.json":
            continue  # another audit's: it may be running beside this one
        holder, problem = _description(other)
        if holder and holder.get("run_id") == run_id and holder.get("pid") == me["pid"]:
            continue
        what = describe(holder) if holder else problem
        note = (" It may have stopped part-way through its changes; nothing of it is assumed: this run reads the servers "
                "as they are now (and an MTA restart it left pending is still done)." if (holder or {}).get("mode") == EXCLUSIVE else "")
        stale.append(f"the previous holder of the lock, {what}, ended without releasing it (interrupted or crashed): "
                     f"its description is removed.{note}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(other)
    own = _own_file(lock_dir, run_id, mode, me["pid"])
    xstate.write_json_atomic(own, me)
    return {"fd": fd, "lock_file": path, "description": own, "mode": mode, "waited": round(clock() - start, 1),
            "stale": stale, "holder": me}


def release(state_dir, run_id, fd=None, pid=None):
    """Unlock (through `fd`, the run's descriptor, when given) and remove this run's description;
    True when something was released."""
    lock_dir, _ = lock_paths(state_dir)
    released = False
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
            released = True
    for path in _description_files(lock_dir) if os.path.isdir(lock_dir) else []:
        holder, _ = _description(path)
        if holder and holder.get("run_id") == run_id and (pid is None or holder.get("pid") == pid):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            released = True
    return released


# -- handing the descriptor to the ansible-playbook process ---------------------------------------------
def open_channel():
    """In the ansible-playbook process, before any worker is forked: the socket pair a worker hands
    the locked descriptor over.  Returns the receiving end; the sending end's number is published in
    the environment, which the forked workers inherit with the socket."""
    receiving, sending = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiving.setblocking(False)
    os.environ[CHANNEL_ENV] = str(sending.fileno())
    return receiving, sending


def hand_over(fd):
    """In a worker: send the locked descriptor to the ansible-playbook process.  False when no
    channel is open (the callback plugin is not loaded)."""
    channel = os.environ.get(CHANNEL_ENV)
    if not channel or not channel.isdigit():
        return False
    try:
        sender = socket.socket(fileno=os.dup(int(channel)))
    except OSError:
        return False
    with sender:
        sender.sendmsg([b"xcon-run-lock"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    return True


def take_over(receiving):
    """In the ansible-playbook process: the descriptor a worker sent, or None.  It is kept open (and
    inherited by every worker forked from now on) until the run releases it or ends."""
    try:
        _, fds, _, _ = socket.recv_fds(receiving, 64, 4, socket.MSG_CMSG_CLOEXEC)
    except (BlockingIOError, OSError):
        return None
    for extra in fds[1:]:
        os.close(extra)
    if not fds:
        return None
    os.environ[HELD_ENV] = str(fds[0])
    return fds[0]


def held_fd():
    """In a worker: the run's locked descriptor inherited from the ansible-playbook process, or None."""
    value = os.environ.get(HELD_ENV, "")
    return int(value) if value.isdigit() else None
