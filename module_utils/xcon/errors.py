"""Every failure talking to a host, as one typed exception each, and its report code.

The exceptions are raised in one place, the transport layer (`xcon.winrm_client` translates every
pywinrm / requests / kinit failure into one of them, the way pywinrm's `send_message` turns HTTP
answers into its own exception types), plus `xcon.ops` for an operation that ran and failed on
the host.  The report code of a failure is a property of its type (the class attribute
`report_code`, read by `error_code()`); nothing here looks at class names or message texts.
Each code has a page in docs/findings/.
"""

from __future__ import annotations

UNREACHABLE = "XCON-UNREACHABLE"
ACCESS_DENIED = "XCON-ACCESS-DENIED"
TLS_FAILED = "XCON-TLS-FAILED"
CLIENT_LIBRARY_MISSING = "XCON-CLIENT-LIBRARY-MISSING"
FAILED = "XCON-OPERATION-FAILED"
SECOND_HOP = "XCON-SECOND-HOP"

# Host-level codes (a host, or one of its operations, could not be read or changed).
ERROR_CODES = (UNREACHABLE, ACCESS_DENIED, TLS_FAILED, CLIENT_LIBRARY_MISSING, FAILED, SECOND_HOP)

SECOND_HOP_WAYS_OUT = (
    "the WinRM session on the management host cannot pass its identity on to the NT 4.0 server "
    "(Basic and NTLM logons never can), so the server saw an anonymous logon. Three ways out: "
    "CredSSP (ansible_winrm_transport: credssp), Kerberos with delegation (ansible_winrm_transport: "
    "kerberos, ansible_winrm_kerberos_delegation: true, the management host trusted for delegation), "
    "or explicit credentials for the server (vaulted xcon_target_user / xcon_target_password)")


class XconSecondHop(Exception):
    """A read through a management host that reached the server as an anonymous logon: a WinRM
    session authenticated with Basic or NTLM cannot pass its identity on (the second hop)."""

    report_code = SECOND_HOP


def second_hop_reason(server: str, through: str, detail: str) -> str:
    """The reason of an XCON-SECOND-HOP read: what came back, and the three ways out."""
    return f"{server} read through management host {through} came back anonymous ({detail}): {SECOND_HOP_WAYS_OUT}"

# What to install for each optional WinRM transport (pywinrm 0.5's extras; see README "Transports").
CLIENT_LIBRARIES = {
    "kerberos": {
        "module": "kerberos",
        "pip": "pykerberos (pywinrm[kerberos]): pip install -r requirements-kerberos.txt",
        "debian": "gcc python3-dev libkrb5-dev to build it, krb5-user for kinit",
    },
    "credssp": {
        "module": "requests_credssp",
        "pip": "requests-credssp (pywinrm[credssp]): pip install -r requirements-credssp.txt",
        "debian": "libkrb5-dev gcc python3-dev only for Kerberos inside CredSSP (pyspnego[kerberos])",
    },
    "ntlm": {
        "module": "requests_ntlm",
        "pip": "requests-ntlm (a requirement of pywinrm): pip install -r requirements.txt",
        "debian": "none",
    },
    "kinit": {
        "module": None,
        "pip": "none (kinit is a program, not a Python package)",
        "debian": "krb5-user (MIT Kerberos kinit), or set ansible_winrm_kinit_cmd",
    },
}


class XconError(Exception):
    """Base class of every failure talking to a Windows host."""

    report_code = FAILED


class XconUnreachable(XconError):
    """The host could not be reached (refused, timed out, name not resolved, connection dropped)."""

    report_code = UNREACHABLE


class XconTLSError(XconError):
    """The TLS handshake or the server certificate validation failed, or the CA trust path given
    does not exist (never retried)."""

    report_code = TLS_FAILED


class XconAuthError(XconError):
    """The host (or the Kerberos KDC) rejected the credentials."""

    report_code = ACCESS_DENIED


class XconClientLibraryMissing(XconError):
    """The transport asked for needs a Python package (or kinit) that is not installed here."""

    report_code = CLIENT_LIBRARY_MISSING

    def __init__(self, transport: str, message: str):
        need = CLIENT_LIBRARIES.get(transport, {})
        self.transport = transport
        self.package = need.get("pip")
        self.debian = need.get("debian")
        text = message
        if self.package:
            text += f"; install {self.package}"
        if self.debian and self.debian != "none":
            text += f" (Debian packages: {self.debian})"
        super().__init__(text)


class XconSettingsError(XconError):
    """The connection settings cannot work as given (unknown transport, invalid pywinrm option)."""

    report_code = FAILED


class XconProtocolError(XconError):
    """The host answered with a WS-Management fault or an unexpected HTTP status."""

    report_code = FAILED

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code  # the WSManFault code, or the HTTP status when there is no fault


def error_code(exc: BaseException) -> str:
    """The report code for a failure talking to a host: a property of the exception's type."""
    return getattr(type(exc), "report_code", FAILED)


def error_reason(exc: BaseException) -> str:
    """A one-line reason that says what failed and, where known, what to do."""
    text = str(exc).strip() or type(exc).__name__
    if error_code(exc) == ACCESS_DENIED and "credential" not in text.lower() and "denied" not in text.lower():
        text = f"access denied: {text}"
    return text.splitlines()[0] if text else text
