"""The MTA's events as the lab logs them: its message file, the text .NET shows without the message
DLL, the builds and which 9301s each logs (see model.py)."""
from __future__ import annotations

import datetime as _dt
import re
from typing import Dict, List, Tuple

from .base import _ip

# -- events --------------------------------------------------------------------------------------
# The lab's copy of the MTA's message file: per event id its type, category and message format with
# insertion strings %1..%n, written from the texts the KB articles quote (docs/facts.md "MTA events";
# the article is named per row). The lab logs insertion strings, as the MTA does, and formats the
# message when it is read; which insertion string holds which value is documented only for 9301
# (Q256844: %1 the transport stack, %2 the address); elsewhere the lab numbers them in the order the
# sentence shows them (ASSUMED).
EVENTS: Dict[int, Tuple[str, str, str]] = {
    # Q196381, Q169716
    1290: ("Warning", "X.400 Service",
           "A locally initiated association to %1 was refused. The failure reason provider was %2 and the reason "
           "was %3. Control block index %4. Type %5. [PLATFORM KERNEL 20 130] (12)"),
    289: ("Warning", "X.400 Service", "A connection to %1 could not be opened. [MTA XFER-IN 17 26] (12)"),
    1294: ("Warning", "X.400 Service",
           "An association with entity %1 ended abnormally. [198 1 0 1 PLATFORM KERNEL 20 130] (10)"),
    # Q196381, Q169716, Q194031
    1293: ("Warning", "X.400 Service",
           "A remotely-initiated association from %1 was refused. The failure reason provider is %2 and the reason "
           "is %3. Control block index %4. Type %5. [PLATFORM KERNEL 26 128] (12)"),
    # Q193380, Q189345, Q256844, Q169113
    9301: ("Information", "Configuration",
           "The message transfer gateway that uses the network address %2 and the transport stack %1 could not be "
           "found. Check the configuration of the mail gateway. [BASE IL TCP/IP DRVR 8 218] (10)"),
    # Q169716
    37: ("Warning", "Security",
         "The %1 (Adjacent-MTA) entity attempted to open an association while suspended. [MTA XFER-IN 22 35] (14)"),
    # Q163085
    659: ("Warning", "Resource", "The queue for %1 is backlogged with %2 messages in the queue. [MTA GATEWAY 45 512] (14)"),
    660: ("Warning", "Resource",
          "The queue backlog for %1 has subsided leaving %2 messages in the queue. [MTA GATEWAY 45 512] (14)"),
    666: ("Warning", "Resource", "The MTA work queue is backlogged with %1 messages in the queue. [MTA SUBMIT 18 231] (14)"),
    667: ("Warning", "Resource",
          "The MTA work queue backlog has subsided leaving %1 messages in the queue. [MTA DISP:RESULT 23 234] (14)"),
    # Q146397, Q174695, Q193049
    9298: ("Information", "X.400 Service",
           "Microsoft Exchange Server MTA Service startup complete, version %1 (build %2). [BASE IL MAIN BASE 31 490] (14)"),
    9299: ("Information", "X.400 Service",
           "Service closedown complete, version %1 (build %2). [BASE IL MAIN BASE 31 490] (16)"),
}
# What .NET's EventLogEntry.Message returns when the source's message DLL cannot be loaded (the op
# reads the log with System.Diagnostics.EventLog): the resource string MessageNotFormatted with the
# entry's event identifier and source, then every insertion string quoted, comma-separated. The
# MTA's identifiers are taken to carry no qualifier bits, so the number is the event id (ASSUMED).
MESSAGE_NOT_FORMATTED = ("The description for Event ID '{id}' in Source '{source}' cannot be found.  The local "
                         "computer may not have the necessary registry information or message DLL files to display "
                         "the message, or you may not have permission to access them.  The following information "
                         "is part of the event:")
# MTA builds (Q163294) and what each logs as 9301 (docs/facts.md): before the Q189345 fix a 9301 at
# every address miss and a second one when the reverse lookup fails too (Q193380); builds 2354-2620
# (5.5 SP2 is 2448.1) log none (Q234962); 2621 and later only the one after the failed lookup.
DEFAULT_BUILDS = {"4.0": ("4", "996.72"), "5.0": ("5.0", "1460.13"), "5.5": ("5.5", "2653.23")}


def format_message(event_id: int, strings: List[str]) -> str:
    """The message the MTA's message file gives for ``event_id`` with these insertion strings."""
    return re.sub(r"%(\d+)", lambda m: strings[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(strings)
                  else m.group(0), EVENTS[event_id][2])


def message_not_formatted(event_id: int, source: str, strings: List[str]) -> str:
    return MESSAGE_NOT_FORMATTED.format(id=event_id, source=source) + ", ".join(f"'{s}'" for s in strings)


def event_9301_mode(build: str) -> str:
    """"every_miss" (builds before 2354), "none" (2354-2620, Q234962), "after_lookup" (2621 on)."""
    number = int(str(build).split(".")[0])
    if number < 2354:
        return "every_miss"
    return "none" if number <= 2620 else "after_lookup"


def address_hex(address: str) -> str:
    """9301's address field: an IP address as its octets in hex (Q193380: 145.245.193.27 is 91F5C11B),
    a name as the hex of its ASCII text (52656d6f74654d5441 is RemoteMTA)."""
    literal = _ip(address)
    if literal is not None:
        return literal.packed.hex().upper()
    return address.encode("ascii").hex().upper()


# Sources that share a busy Exchange server's Application log with the MTA (topology
# ``event_log_size``); what they say does not matter, only that a read walks past them.
OTHER_SOURCES = ("MSExchangeIS", "MSExchangeDS", "MSExchangeSA", "ESE97", "Userenv", "Perflib")


def busy_log(start, size: int):
    """``size`` entries of other sources, evenly over the 7 days before ``start``:
    ``[(moment, order, recorded entry)]`` (order after any recorded entry's)."""
    week = _dt.timedelta(days=7)
    out = []
    for index in range(size):
        source = OTHER_SOURCES[index % len(OTHER_SOURCES)]
        out.append((start - week + week * index / size, 1_000_000 + index,
                    {"id": 1000 + index % 100, "type": "Information", "category": "None", "source": source,
                     "message": f"{source} routine entry {index}.", "strings": []}))
    return out
