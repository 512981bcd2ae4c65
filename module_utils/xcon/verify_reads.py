"""When xcon_verify reads the servers (pure Python).

When (``next_wait``): a link passes only at a read taken once its whole verification window has
been watched (``waited >= window``), so a read before the shortest window can decide nothing about
a pass. The verification reads every involved server at the start (the baseline: each server's
time then is the start of its watch, and the report's timeline needs a read after the changes),
then at the end of the shortest window, then every poll interval until the timeout.  Between the
baseline and the first decision only the servers whose last read failed are read again, at every
poll interval: two failed reads in a row of a server on every pending link end the verification
early, as they always did ("unreadable twice -> stop").  The waiting is never shortened: against
real servers it is real minutes, and each link still needs its whole window.
"""

from __future__ import annotations


def next_wait(waited, first, poll, timeout, probing):
    """(minutes to wait, whether the read after it reads every server) from `waited` minutes on.

    first: when the first link can pass (its window); poll: the poll interval; timeout: when the
    verification ends; probing: some server's last read failed (it is read again every interval
    before the first decision)."""
    decide = first if waited < first else waited + poll
    decide = min(decide, timeout)
    if probing and waited + poll < decide:
        return poll, False
    return decide - waited, True
