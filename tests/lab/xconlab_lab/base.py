"""The lab model's shared pieces: constants, the op error, and small helpers (used by every part of
the model; see model.py)."""
from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
from typing import Optional

from . import schema

SEP = "\u00a7"                    # Connected-Domains field separator (byte 0xA7)
MTA_SERVICE = "MSExchangeMTA"
OTHER_SERVICES = ("MSExchangeDS", "MSExchangeIS", "MSExchangeSA")
X400_PORT = 102
EVENT_LOG_CAP = 50000
HISTORY_CAP = 10080               # per flow: minutes with deliveries kept (one week)
LISTENING_PORTS = (135, 445)     # besides the MTA's port, LDAP and WinRM
MTA_PARAMETERS_KEY = "SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters"
# LDAP_CAP_ACTIVE_DIRECTORY_OID: a RootDSE whose supportedCapabilities lists it is Active Directory.
AD_CAPABILITY = "1.2.840.113556.1.4.800"
ISO = "%Y-%m-%dT%H:%M:%SZ"


ANONYMOUS = "anonymous"            # rights of an anonymous logon at a managed server (second hop)


# The .NET type of a failure the lab raises without naming one: what ADSI throws (and what the
# runner's New-XconError makes), System.Runtime.InteropServices.COMException.
COM_EXCEPTION = "System.Runtime.InteropServices.COMException"
WIN32_EXCEPTION = "System.ComponentModel.Win32Exception"
E_FAIL = "0x80004005"           # Win32Exception.ErrorCode (ExternalException's HRESULT), whatever the Win32 error


class OpError(Exception):
    """An op failed: category (what the lab means), HRESULT (``0x8007....``), message, and the
    innermost .NET exception as the runner reports it: ``type`` (COMException when not given) and
    ``native`` (the Win32 error of a Win32Exception)."""

    def __init__(self, category: str, hresult: str, message: str, type: Optional[str] = None,
                 native: Optional[int] = None) -> None:
        super().__init__(message)
        self.category, self.hresult, self.message = category, hresult, message
        self.type, self.native = type, native


def win32_error(category: str, native: int, message: str) -> OpError:
    """A failure that reaches the runner as a System.ComponentModel.Win32Exception (native error)."""
    return OpError(category, E_FAIL, message, WIN32_EXCEPTION, native)


class FirewallRecordError(ValueError):
    """A firewall change record that cannot be applied (nothing was changed)."""


def _op_error(category: str, message: str, hresult: Optional[str] = None, type: Optional[str] = None) -> OpError:
    return OpError(category, hresult or schema.HRESULTS[category], message, type)


def _iso(moment: _dt.datetime) -> str:
    return moment.strftime(ISO)


@functools.lru_cache(maxsize=65536)
def _ip(text: str) -> Optional[ipaddress._BaseAddress]:
    """The address `text` names, or None (memoised: the model compares every server's and firewall's
    addresses for each association of each emulated minute; addresses are immutable)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
