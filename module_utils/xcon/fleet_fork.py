"""A fleet task spread over the controller's cores (issue 19).

A fleet task (the audit's read, the verification's reads, the changes and restarts) is one Ansible
worker whose `forks` threads share one interpreter lock: on a 2-core controller a 100-link audit's
read kept one core busy, resolving 200 servers' settings (about 10 ms each: templating, connection
options) and running their WinRM commands, and left the other core to the lab.  `run_shares` cuts
the fleet into one share per process: the first shares go to child processes forked from the
worker before it starts any thread (copy-on-write: the task's variables, plugins and arguments are
already in memory), the last stays in the worker; each process resolves and reads its own share
from its own threads, and a child hands back each job's outcome (its value, or the exception it
raised) through a pipe, then ends with os._exit: nothing of Ansible's runs in it after its share.

What may go here: reads, and writes whose every change is on disk before it is sent (the change
journal and the restart marker, xcon.state).  A child that dies (killed, out of memory) loses its
share's answers: each of its jobs then fails with `lost` ("the reading process ... ended ...;
nothing was changed" for a read; for a write, an unanswered write, as a transport failure after
the write was sent: its link stops there, and rollback or the re-run sees what the journal holds).
A job a child must not run answers DEFER (one whose client would obtain a Kerberos ticket by kinit
into a temporary file only the worker removes; a change made through another server or by the
operator): the caller runs those in the worker afterwards.  No fork happens when the worker already
runs other threads (a fork copies only the forking thread; locks the others held would stay held
in the child).

How many processes: XCON_FLEET_PROCESSES (1: threads only, no fork), else one per core while each
gets at least MIN_SHARE jobs.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import signal
import threading

MIN_SHARE = 16  # fewer jobs per process than this: the fork costs more than the core saves
ENV = "XCON_FLEET_PROCESSES"
DEFER = ("defer",)  # a job's outcome: run it in the worker instead


READ_LOST = "the reading process for this server ended before it answered ({why}); nothing was changed"


class ReaderLost(Exception):
    """A job whose process ended before it handed its outcome back (`why`: how the process ended)."""

    def __init__(self, text, why=""):
        super().__init__(text)
        self.why = why


def forkable(*clients):
    """Whether work with these WinRM clients may run in a forked process: not when one would obtain
    a Kerberos ticket by kinit, into a temporary file only the process that made it removes."""
    return not any(c is not None and c.kinits() for c in clients)


def processes_for(jobs, cores=None):
    """How many processes a fleet task of `jobs` jobs uses (the worker counts as one)."""
    wanted = os.environ.get(ENV, "").strip()
    if wanted:
        try:
            count = int(wanted)
        except ValueError:
            raise ValueError(f"{ENV} must be a whole number of processes (1: no fork), not {wanted!r}") from None
        return max(1, min(count, jobs))
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, jobs // MIN_SHARE))


def threads_each(threads, processes, share):
    """Each process's threads: the task's `threads` divided among the processes, at most `share`."""
    return max(1, min(share, -(-int(threads) // max(1, processes))))


def shares(keys, processes):
    """`keys` cut into `processes` contiguous shares, as even as they go."""
    keys = list(keys)
    size, extra = divmod(len(keys), max(1, processes))
    out, start = [], 0
    for index in range(max(1, processes)):
        end = start + size + (1 if index < extra else 0)
        out.append(keys[start:end])
        start = end
    return [share for share in out if share] or [[]]


def run_shares(keys, work, processes=None, lost=READ_LOST):
    """{key: outcome} of every key: `work(share)` returns {key: outcome} for its share, an outcome
    being (True, value), (False, exception) or DEFER.  The first shares run in forked children,
    the last here; an exception `work` raises in a child is raised here, after every child ended.
    A key whose child ended without answering: (False, ReaderLost(`lost` with {why}))."""
    keys = list(keys)
    processes = processes if processes is not None else processes_for(len(keys))
    if processes > 1 and threading.active_count() > 1:
        processes = 1  # never fork a threaded process
    parts = shares(keys, processes)
    children = []
    try:
        for share in parts[:-1]:
            children.append(_fork(share, work))
        outcomes = dict(work(parts[-1]))
        raised = None
        while children:
            pid, read_fd, share = children.pop(0)
            kind, answer = _collect(pid, read_fd)
            if kind == "raised":
                raised, answer = raised or answer, {}
            why = answer if kind == "lost" else "it gave no answer"
            answer = answer if kind == "outcomes" else {}
            for key in share:
                outcomes[key] = answer.get(key) or (False, ReaderLost(lost.format(why=why), why))
        if raised is not None:
            raise raised
        return outcomes
    finally:
        for pid, read_fd, _ in children:  # stopped early (an exception here): none is left behind
            _stop(pid, read_fd)


def run_fleet(keys, work, threads, lost=READ_LOST):
    """{key: (True, value) | (False, exception)} of a fleet task: `work(share, threads, child)`
    returns the outcomes of its share, run from `threads` threads, DEFER for a job a `child` (a
    forked process) must not run; the DEFERred jobs run here afterwards, from the task's whole
    `threads`.  `lost`: run_shares'."""
    keys = list(keys)
    processes = processes_for(len(keys))
    each = threads_each(threads, processes, -(-len(keys) // processes))
    worker = os.getpid()
    outcomes = run_shares(keys, lambda share: work(share, each, os.getpid() != worker), processes, lost)
    deferred = [key for key, outcome in outcomes.items() if outcome == DEFER]
    if deferred:
        outcomes.update(work(deferred, threads, False))
    return outcomes


def _fork(share, work):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its share, its outcomes down the pipe, and nothing else
        status = 1
        try:
            os.close(read_fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                answer = ("outcomes", {key: _portable_outcome(outcome) for key, outcome in work(share).items()})
            except Exception as exc:  # noqa: BLE001 - raised by the worker, as it would have been there
                answer = ("raised", _portable(exc))
            view = memoryview(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
            while view:
                view = view[os.write(write_fd, view):]
            status = 0
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(write_fd)
    return pid, read_fd, share


def _collect(pid, read_fd):
    """The child's answer: ("outcomes", {key: outcome}), ("raised", exception), or ("lost", why
    there is none)."""
    chunks = []
    try:
        while True:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - no answer, or a cut one: the process ended first
        if os.WIFSIGNALED(status):
            return "lost", f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        return "lost", f"exit status {os.WEXITSTATUS(status)}"


def _stop(pid, read_fd):
    os.close(read_fd)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _portable(exc):
    """`exc` if it survives pickling, else a plain exception with its type's name and its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception whose class cannot be rebuilt from its args
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _portable_outcome(outcome):
    if outcome == DEFER:
        return DEFER
    ok, value = outcome
    return (ok, value if ok else _portable(value))


def thread_outcomes(jobs, threads):
    """{key: (True, value) | (False, exception)} of `jobs` (an iterable of (key, fn, args), each
    submitted as soon as the iterable yields it: a caller may resolve the next job meanwhile) from
    at most `threads` threads."""
    outcomes, futures = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for key, fn, args in jobs:
            futures[key] = pool.submit(fn, *args)
        for key, future in futures.items():
            try:
                outcomes[key] = (True, future.result())
            except Exception as exc:  # noqa: BLE001 - the caller decides what a failure means
                outcomes[key] = (False, exc)
    return outcomes
