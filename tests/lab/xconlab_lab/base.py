"""The lab model's shared pieces: constants, the op error, and small helpers (used by every part of
the model; see model.py)."""
from __future__ import annotations

import datetime as _dt
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


class OpError(Exception):
    """An op failed: ADSI-style category, HRESULT (``0x8007....``) and message."""

    def __init__(self, category: str, hresult: str, message: str) -> None:
        super().__init__(message)
        self.category, self.hresult, self.message = category, hresult, message


class FirewallRecordError(ValueError):
    """A firewall change record that cannot be applied (nothing was changed)."""


def _op_error(category: str, message: str, hresult: Optional[str] = None) -> OpError:
    return OpError(category, hresult or schema.HRESULTS[category], message)


def _iso(moment: _dt.datetime) -> str:
    return moment.strftime(ISO)


def _ip(text: str) -> Optional[ipaddress._BaseAddress]:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
