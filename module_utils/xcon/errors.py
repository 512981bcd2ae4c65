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


# -- what an operation's failure on the host means ------------------------------------------------
# The runner reports the innermost exception of a failure as it is (its .NET type, HRESULT and, for
# a Win32Exception, the native Win32 error) and a category only when an op script raised one itself
# (a refused parameter); the meaning is decided here, on the controller (docs/facts.md "Errors
# as .NET 2.0 raises them"). Win32 error codes (winerror.h / lmerr.h); an HRESULT of facility 7
# (0x8007xxxx) carries one in its low 16 bits, as ADSI's LDAP errors do.
CREDENTIAL_CONFLICT = "CredentialConflict"
UNREACHABLE_CATEGORY = "ServerUnavailable"
WIN32_CATEGORIES = {
    5: "AccessDenied",                    # ERROR_ACCESS_DENIED
    86: "AccessDenied",                   # ERROR_INVALID_PASSWORD
    1326: "AccessDenied",                 # ERROR_LOGON_FAILURE
    1327: "AccessDenied",                 # ERROR_ACCOUNT_RESTRICTION
    1330: "AccessDenied",                 # ERROR_PASSWORD_EXPIRED
    1331: "AccessDenied",                 # ERROR_ACCOUNT_DISABLED
    1909: "AccessDenied",                 # ERROR_ACCOUNT_LOCKED_OUT
    8344: "AccessDenied",                 # ERROR_DS_INSUFF_ACCESS_RIGHTS (LDAP 50)
    1219: CREDENTIAL_CONFLICT,            # ERROR_SESSION_CREDENTIAL_CONFLICT
    51: UNREACHABLE_CATEGORY,             # ERROR_REM_NOT_LIST
    53: UNREACHABLE_CATEGORY,             # ERROR_BAD_NETPATH
    64: UNREACHABLE_CATEGORY,             # ERROR_NETNAME_DELETED
    67: UNREACHABLE_CATEGORY,             # ERROR_BAD_NET_NAME
    1203: UNREACHABLE_CATEGORY,           # ERROR_NO_NET_OR_BAD_PATH
    1231: UNREACHABLE_CATEGORY,           # ERROR_NETWORK_UNREACHABLE
    1232: UNREACHABLE_CATEGORY,           # ERROR_HOST_UNREACHABLE
    1722: UNREACHABLE_CATEGORY,           # RPC_S_SERVER_UNAVAILABLE
    8250: UNREACHABLE_CATEGORY,           # ERROR_DS_SERVER_DOWN (LDAP 81)
    8245: "UnwillingToPerform",           # ERROR_DS_UNWILLING_TO_PERFORM (LDAP 53): an Exchange 5.0 directory's answer to a write
    8240: "NoSuchObject",                 # ERROR_DS_NO_SUCH_OBJECT (LDAP 32)
    5010: "AlreadyExists",                # ERROR_OBJECT_ALREADY_EXISTS
    8305: "AlreadyExists",                # ERROR_DS_OBJ_STRING_NAME_EXISTS (LDAP 68)
    8212: "ObjectClassViolation",         # ERROR_DS_OBJ_CLASS_VIOLATION (LDAP 65)
    8239: "ConstraintViolation",          # ERROR_DS_CONSTRAINT_VIOLATION (LDAP 19)
    8242: "InvalidSyntax",                # ERROR_DS_INVALID_DN_SYNTAX (LDAP 34)
    8213: "InvalidSyntax",                # ERROR_DS_INVALID_ATTRIBUTE_SYNTAX (LDAP 21)
    8204: "UndefinedAttribute",           # ERROR_DS_NO_ATTRIBUTE_OR_VALUE (LDAP 16)
    87: "InvalidParameter",               # ERROR_INVALID_PARAMETER
    1053: "ServiceError",                 # ERROR_SERVICE_REQUEST_TIMEOUT
    1056: "ServiceError",                 # ERROR_SERVICE_ALREADY_RUNNING
    1060: "ServiceError",                 # ERROR_SERVICE_DOES_NOT_EXIST
    1061: "ServiceError",                 # ERROR_SERVICE_CANNOT_ACCEPT_CTRL
    1062: "ServiceError",                 # ERROR_SERVICE_NOT_ACTIVE
    1063: "ServiceError",                 # ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
}
# .NET exception types that say what happened whatever their HRESULT: a registry denial
# (RegistryKey.OpenSubKey: SecurityException; OpenRemoteBaseKey / GetValue: UnauthorizedAccessException),
# a service wait that ran out (System.ServiceProcess.TimeoutException), a refused argument.
TYPE_CATEGORIES = {
    "System.Security.SecurityException": "AccessDenied",
    "System.UnauthorizedAccessException": "AccessDenied",
    "System.ServiceProcess.TimeoutException": "ServiceError",
    "System.ArgumentException": "InvalidParameter",
    "System.ArgumentNullException": "InvalidParameter",
    "System.ArgumentOutOfRangeException": "InvalidParameter",
}
CATEGORY_HINTS = {
    CREDENTIAL_CONFLICT: "this host already has a session to that server as another account (Windows "
                         "allows one per server); the op would run as that account, so it was not run: remove "
                         "the other session (net use \\\\SERVER\\IPC$ /delete, or the mapped drive) or use the "
                         "same account",
}


def win32_code(hresult) -> int | None:
    """The Win32 error inside an HRESULT of facility 7 (0x8007xxxx), else None."""
    try:
        value = int(str(hresult), 16) if str(hresult).lower().startswith("0x") else int(hresult)
    except (TypeError, ValueError):
        return None
    value &= 0xFFFFFFFF
    return value & 0xFFFF if value >> 16 == 0x8007 else None


def op_category(error: dict) -> str:
    """The category of an operation's failure from what the runner reported: the op's own category
    first, then the native Win32 error, the Win32 error of a facility-7 HRESULT, the exception type."""
    if error.get("category"):
        return str(error["category"])
    for code in (error.get("native_error"), win32_code(error.get("hresult"))):
        if isinstance(code, int) and not isinstance(code, bool) and code in WIN32_CATEGORIES:
            return WIN32_CATEGORIES[code]
    return TYPE_CATEGORIES.get(str(error.get("type") or ""), "OperationFailed")
