"""The lab's WS-Management server: emulated Windows hosts that real pywinrm talks to on loopback.

One :class:`WsmanServer` hosts any number of endpoints (one per emulated Windows host), each a
listening socket on loopback with its own scheme (http/https), accepted authentication methods
(Basic, NTLM) and accounts. It speaks the WinRS shell protocol (``.../windows/shell/cmd``: Create,
Command, Send, Receive, Signal, Delete) and hands every command to a *handler*::

    handler(endpoint_name, username, command_line, stdin) -> (stdout, stderr, exit_code)

(with ``logon=Logon(method, delegated)`` as a keyword too when the handler has a true
``takes_logon`` attribute: the logon the command's shell was created with), which plays the Windows
side (``handler.py`` for the lab). What it does the way Windows does, per ``shared/domain/winrm.md``:

* Kerberos (``Negotiate``/``Kerberos`` with a raw Kerberos token, one leg, the AP-REP back in the
  200 for mutual authentication; the lab's MIT KDC, :mod:`.kdc`, keys ``HTTP/<fqdn>``) and CredSSP
  (``CredSSP`` legs of 401 until the delegated credentials arrived), with their message encryption
  over http (:mod:`.kerbauth`); whether the logon delegated the user's identity goes with every
  command (:class:`Logon`).

* Basic authentication (preemptive; allowed over http, as with AllowUnencrypted) and NTLM (three
  legs of 401 on one keep-alive connection; the connection stays authenticated), each endpoint
  accepting only the methods configured for it; wrong credentials -> 401 with an empty body.
* NTLM message encryption over http (``multipart/encrypted``, :mod:`.ntlmauth`), answered in kind.
* https with a lab CA made at start (:mod:`.certs`); ``srv.ca_path`` is the CA to trust.
* cmd.exe's command-line limit (8191 characters: "The command line is too long.", exit 1, the
  handler is not called), stdin accumulated over Send until ``End="true"``, output by Receive in
  envelopes no larger than the client's MaxEnvelopeSize, several commands per shell (as Ansible
  uses it), SOAP faults shaped like Windows' ones (shell/command not found, OperationTimeout,
  unsupported action, quotas: shells per user and operations per shell, the latter with the
  ``MSFT_WmiError`` record Ansible reacts to by re-creating its shell).

Faults can be injected per endpoint (:meth:`WsmanServer.set_fault`) and counters read back
(:meth:`WsmanServer.stats`). Threads: one accept loop (a selector over every listening socket),
one thread per client connection and one per running command, all daemon threads joined by
:meth:`WsmanServer.stop`.
"""
from __future__ import annotations

import base64
import binascii
import http.server
import itertools
import logging
import os
import re
import selectors
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from . import soap
from .certs import LabCertificates, make_lab_certificates
from .kerbauth import CredsspAcceptor, KerberosAcceptor, is_kerberos_token
from .ntlmauth import (CREDSSP_PROTOCOL, ENCRYPTED_PROTOCOL, AuthError, NtlmAcceptor, UserTable,
                       content_type_for, encryption_protocol, unwrap_request, wrap_response)

__all__ = ["EndpointConfig", "KerberosSetup", "Logon", "WsmanServer", "clixml_error", "CMD_LINE_LIMIT", "FAULT_KINDS"]

LOG = logging.getLogger("xconlab.wsman")

Handler = Callable[[str, str, str, bytes], Tuple[bytes, bytes, int]]

CMD_LINE_LIMIT = 8191                    # cmd.exe's maximum command-line length
CMD_LINE_TOO_LONG = b"The command line is too long.\r\n"
MAX_SHELLS_PER_USER = 30                 # WinRM's default MaxShellsPerUser
MAX_OPERATIONS_PER_SHELL = 1500          # MaxConcurrentOperationsPerUser; WinRS never gives one back
MAX_REQUEST_BYTES = 32 * 1024 * 1024     # sanity limit on one HTTP body
IDLE_CONNECTION_TIMEOUT = 120.0          # seconds an idle keep-alive connection is kept
TLS_HANDSHAKE_TIMEOUT = 10.0
FAULT_KINDS = ("drop_after", "operation_timeout", "slow", "refuse_credentials")
AUTH_METHODS = ("basic", "ntlm", "kerberos", "credssp")
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"


# ---- PowerShell's CLIXML error stream ---------------------------------------------------------
_CLIXML_NEEDS_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x1f]")


def clixml_error(text: str) -> bytes:
    """``text`` as PowerShell writes an error record to stderr of a remote shell (CLIXML).

    ``#< CLIXML\\r\\n<Objs ...><S S="Error">text_x000D__x000A_</S></Objs>``: XML-escaped, line
    breaks normalised to CRLF and written ``_x000D__x000A_`` (other control characters and a
    literal ``_xHHHH_`` escaped the same way), ending with one line break - the form pywinrm's
    ``run_ps`` turns back into plain text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    if not text.endswith("\r\n"):
        text += "\r\n"
    body = _CLIXML_NEEDS_ESCAPE.sub(lambda m: "_x%04X_" % ord(m.group(0)), text)
    body = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return ("#< CLIXML\r\n"
            '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            f'<S S="Error">{body}</S></Objs>').encode("utf-8")


# ---- logons -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Logon:
    """How a session logged on: ``method`` (basic | ntlm | kerberos | credssp) and ``delegated``:
    whether the host holds something to act as the user on another machine (a forwarded TGT, or
    the password CredSSP delegated). Basic and NTLM never do: the second hop is anonymous."""

    method: str
    delegated: bool = False


@dataclass
class KerberosSetup:
    """What the acceptors need from the lab's KDC: the keytab holding a host's ``HTTP/<fqdn>`` key
    and the realms with the NetBIOS domain of their accounts (``{"CONTOSO.EXAMPLE": "CONTOSO"}``)."""

    keytab_for: Callable[[str], str]
    realms: Dict[str, str]


# ---- configuration ----------------------------------------------------------------------------
@dataclass
class EndpointConfig:
    """One emulated Windows host's WinRM listener.

    ``users`` maps ``DOMAIN\\user`` (or a bare ``user``) to its password. ``port`` 0 lets the
    system pick one (:meth:`WsmanServer.start` returns the ports).
    """

    name: str
    scheme: str = "http"
    port: int = 0
    auth: Tuple[str, ...] = ("basic", "ntlm")
    users: Dict[str, str] = field(default_factory=lambda: {"CONTOSO\\xcon": "S3cret!"})
    bind: str = "127.0.0.1"
    fqdn: Optional[str] = None      # the host's DNS name: its Kerberos service principal HTTP/<fqdn>
    # The host's ANSI code page: Windows decodes Basic credentials in it (1252 on Western systems;
    # a client such as Python's requests sends latin-1 bytes, so a Western non-ASCII password works).
    codepage: int = 1252

    def __post_init__(self) -> None:
        self.scheme = str(self.scheme).lower()
        if self.scheme not in ("http", "https"):
            raise ValueError(f"endpoint {self.name}: scheme must be http or https, not {self.scheme!r}")
        if isinstance(self.auth, str):
            self.auth = tuple(a.strip() for a in self.auth.split(","))
        self.auth = tuple(str(a).lower() for a in self.auth)
        unknown = [a for a in self.auth if a not in AUTH_METHODS]
        if unknown or not self.auth:
            raise ValueError(f"endpoint {self.name}: auth must be among {AUTH_METHODS}, not {self.auth!r}")
        if "kerberos" in self.auth and not self.fqdn:
            raise ValueError(f"endpoint {self.name}: Kerberos needs the host's fqdn (its HTTP/ service principal)")
        self.port = int(self.port or 0)
        self.users = {str(k): str(v) for k, v in (self.users or {}).items()}
        self.codepage = int(self.codepage)


# ---- per-endpoint state -----------------------------------------------------------------------
class _Faults:
    """Injected faults of one endpoint (guarded by the endpoint lock)."""

    def __init__(self) -> None:
        self.drop_after: Optional[int] = None   # requests still answered before dropping starts
        self.operation_timeouts = 0             # Receive requests still to answer with the fault
        self.slow = 0.0                         # seconds added before each response
        self.refuse_credentials = False


class _Command:
    """One WinRS command: its command line, stdin so far, and (once run) its output."""

    def __init__(self, command_id: str, command_line: str) -> None:
        self.id = command_id
        self.command_line = command_line
        self.stdin: List[bytes] = []
        self.started = False
        self.done = threading.Event()
        self.stdout = b""
        self.stderr = b""
        self.exit_code = 0
        self.sent_out = 0                       # bytes of stdout/stderr already received
        self.sent_err = 0


class _Shell:
    def __init__(self, shell_id: str, owner: str, input_streams: str, output_streams: str,
                 codepage: str) -> None:
        self.id = shell_id
        self.owner = owner
        self.logon = Logon("anonymous", False)   # the logon of the request that created it
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.codepage = codepage
        self.commands: Dict[str, _Command] = {}
        self.operations = 0                     # commands ever started in this shell


class _Endpoint:
    """Runtime state of one endpoint: socket, accounts, shells, faults and counters."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.name = config.name
        self.users = UserTable(config.users)
        self.lock = threading.Lock()
        self.sock: Optional[socket.socket] = None
        self.port = 0
        self.ntlm_file: Optional[str] = None
        self.shells: Dict[str, _Shell] = {}
        self.faults = _Faults()
        self.counters = {"http_requests": 0, "commands": 0, "shells": 0,
                         "encrypted_requests": 0, "auth_failures": 0}

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counters[key] += n

    def challenge_headers(self) -> List[str]:
        """``WWW-Authenticate`` values for a 401, in Windows' order."""
        auth = self.config.auth
        values = []
        if "ntlm" in auth or "kerberos" in auth:
            values.append("Negotiate")
        if "kerberos" in auth:
            values.append("Kerberos")
        if "basic" in auth:
            values.append('Basic realm="WSMAN"')
        if "credssp" in auth:
            values.append("CredSSP")
        return values


# ---- the HTTP side of one connection ----------------------------------------------------------
class _Drop(Exception):
    """Close the connection without answering (the drop_after fault)."""


class _ConnectionHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handling of one client connection of one endpoint.

    ``server`` (BaseHTTPRequestHandler's third argument) is a ``(WsmanServer, _Endpoint)`` pair.
    The NTLM security context belongs to the connection, as with HTTP.sys.
    """

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT

    def setup(self) -> None:
        self.wsman, self.endpoint = self.server  # type: ignore[misc]
        # The connection's security context (NTLM, Kerberos or CredSSP acceptor): handshake in
        # progress or done; the account it authenticated; the logon it gave the session.
        self.ntlm = None
        self.ntlm_user: Optional[str] = None
        self.logon = Logon("anonymous", False)
        self.auth_protocol = ENCRYPTED_PROTOCOL      # the encryption protocol of self.ntlm
        self.reply_headers: List[Tuple[str, str]] = []  # the final leg's token (mutual authentication)
        super().setup()

    # quiet, Windows-looking server identity
    def version_string(self) -> str:
        return "Microsoft-HTTPAPI/2.0"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        LOG.debug("%s %s: " + format, self.endpoint.name, self.client_address[0], *args)

    # -- methods --
    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        endpoint = self.endpoint
        endpoint.count("http_requests")
        try:
            body = self._read_body()
            self.wsman._check_drop(endpoint)
        except _Drop:
            LOG.info("%s: dropping the connection (drop_after fault)", endpoint.name)
            self.close_connection = True
            return
        except ValueError as exc:
            self._reply(400, b"", "text/plain", close=True)
            LOG.info("%s: bad request: %s", endpoint.name, exc)
            return
        if self.path.split("?")[0].rstrip("/").lower() != "/wsman":
            self._reply(404, b"", "text/plain")
            return
        username = self._authenticate()
        if username is None:
            return                               # a 401 has been sent
        protocol = encryption_protocol(self.headers.get("Content-Type", ""))
        encrypted = protocol is not None
        if encrypted:
            if self.ntlm is None or not self.ntlm.complete or protocol != self.auth_protocol.lower():
                self._unauthorized()
                return
            try:
                body = unwrap_request(self.ntlm, body)
            except AuthError as exc:
                LOG.info("%s: undecryptable request: %s", endpoint.name, exc)
                self._reply(400, b"", "text/plain", close=True)
                return
            endpoint.count("encrypted_requests")
        if not body:
            # pywinrm's first authenticated POST (it sets up message encryption): empty 200.
            status, payload = 200, b""
        else:
            status, payload = self.wsman._dispatch(endpoint, username, body, self.client_address[0],
                                                   self.logon)
        headers, self.reply_headers = self.reply_headers, []
        if encrypted and payload:
            self._reply(status, wrap_response(self.ntlm, payload, self.auth_protocol),
                        content_type_for(self.auth_protocol, len(payload)), headers=headers)
        else:
            self._reply(status, payload, SOAP_CONTENT_TYPE, headers=headers)

    def _not_allowed(self) -> None:
        self.endpoint.count("http_requests")
        self._reply(405, b"", "text/plain")

    do_GET = do_PUT = do_DELETE = do_HEAD = _not_allowed  # noqa: N815

    # -- plumbing --
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_REQUEST_BYTES:
                    raise ValueError("request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_REQUEST_BYTES:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: bytes, content_type: str, close: bool = False,
               headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.wsman._delay(self.endpoint)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if payload or status != 401:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _unauthorized(self, token: Optional[Tuple[str, bytes]] = None) -> None:
        """401: a challenge leg (``token`` = (scheme, NTLM challenge)) or a refusal (empty)."""
        if token is not None:
            headers = [("WWW-Authenticate", f"{token[0]} {base64.b64encode(token[1]).decode()}")]
        else:
            if self.headers.get("Authorization"):
                self.endpoint.count("auth_failures")
            headers = [("WWW-Authenticate", v) for v in self.endpoint.challenge_headers()]
        self._reply(401, b"", "text/plain", headers=headers)

    def _authenticate(self) -> Optional[str]:
        """The configured account of the request's user, or None after sending a 401.

        Sets ``self.logon``: how the session logged on and whether the logon can reach another
        machine as the user (see :class:`Logon`)."""
        endpoint = self.endpoint
        auth = endpoint.config.auth
        with endpoint.lock:
            refuse = endpoint.faults.refuse_credentials
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.strip().partition(" ")
        scheme_l = scheme.lower()
        if not header:
            if self.ntlm_user is not None and not refuse:
                return self.ntlm_user            # NTLM/Kerberos/CredSSP authenticate the connection
            self._unauthorized()
            return None
        if scheme_l == "basic" and "basic" in auth:
            self.ntlm = self.ntlm_user = None
            try:
                raw = base64.b64decode(value.strip())
                login, _, password = raw.decode(f"cp{endpoint.config.codepage}").partition(":")
            except (binascii.Error, UnicodeDecodeError, LookupError):
                login, password = "", None
            name = endpoint.users.check_password(login, password) if password is not None else None
            if name is None or refuse:
                LOG.info("%s: Basic logon of %r refused", endpoint.name, login)
                self._unauthorized()
                return None
            self.logon = Logon("basic", False)
            return name
        try:
            token = base64.b64decode(value.strip())
        except binascii.Error:
            token = b""
        kind = None
        if scheme_l in ("negotiate", "ntlm") and token[:8] == b"NTLMSSP\x00" and "ntlm" in auth:
            kind = "ntlm"
        elif scheme_l in ("negotiate", "kerberos") and "kerberos" in auth and is_kerberos_token(token):
            kind = "kerberos"
        elif scheme_l == "credssp" and "credssp" in auth:
            kind = "credssp"
        elif scheme_l in ("negotiate", "ntlm") and "ntlm" in auth and self.ntlm is not None \
                and isinstance(self.ntlm, NtlmAcceptor) and not self.ntlm.complete:
            kind = "ntlm"                          # a later leg of an NTLM handshake
        if kind is None:
            self._unauthorized()
            return None
        try:
            if kind == "ntlm" and (token[8:12] == b"\x01\x00\x00\x00" or not isinstance(self.ntlm, NtlmAcceptor)
                                   or self.ntlm.complete):
                # NEGOTIATE_MESSAGE: a new handshake on this connection
                self.ntlm_user = None
                self.ntlm = NtlmAcceptor(endpoint.users, endpoint.ntlm_file, self.wsman._cbt_hash(endpoint))
                self.auth_protocol = ENCRYPTED_PROTOCOL
            elif kind == "kerberos":               # one leg: every token starts a new logon
                self.ntlm_user = None
                self.ntlm = self.wsman._kerberos_acceptor(endpoint)
                self.auth_protocol = ENCRYPTED_PROTOCOL
            elif kind == "credssp" and (not isinstance(self.ntlm, CredsspAcceptor) or self.ntlm.complete):
                self.ntlm_user = None
                self.ntlm = CredsspAcceptor(endpoint.users, endpoint.ntlm_file)
                self.auth_protocol = CREDSSP_PROTOCOL
            out = self.ntlm.step(token)
        except AuthError as exc:
            LOG.info("%s: %s logon refused: %s", endpoint.name, kind, exc)
            self.ntlm = None
            self._unauthorized()
            return None
        if not self.ntlm.complete:
            self._unauthorized((scheme, out or b""))
            return None
        if refuse:
            LOG.info("%s: %s logon of %s refused (refuse_credentials)", endpoint.name, kind, self.ntlm.username)
            self.ntlm = None
            self._unauthorized()
            return None
        if out:                                    # Kerberos: the AP-REP (mutual authentication)
            self.reply_headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")]
        self.ntlm_user = self.ntlm.username
        self.logon = Logon(kind, bool(getattr(self.ntlm, "delegated", False)))
        LOG.info("%s: %s logon of %s%s", endpoint.name, kind, self.ntlm_user,
                 " (credentials delegated)" if self.logon.delegated else "")
        return self.ntlm_user


# ---- the server -------------------------------------------------------------------------------
class WsmanServer:
    """Many emulated WinRM listeners in one process. See the module docstring.

    ``handler(endpoint_name, username, command_line, stdin) -> (stdout, stderr, exit_code)`` is
    called from worker threads (one per command); ``username`` is the configured account name.
    ``max_shells_per_user`` (per endpoint) and ``max_operations_per_shell`` are WinRM's quotas.
    """

    _instances = itertools.count(1)

    def __init__(self, endpoints: Iterable[EndpointConfig], handler: Handler, cert_dir: str,
                 max_shells_per_user: int = MAX_SHELLS_PER_USER,
                 max_operations_per_shell: int = MAX_OPERATIONS_PER_SHELL,
                 kerberos: Optional["KerberosSetup"] = None) -> None:
        #: every thread of this server has a name starting with this
        self.thread_prefix = f"wsman{next(self._instances)}-"
        self.endpoints: Dict[str, _Endpoint] = {}
        for config in endpoints:
            if config.name in self.endpoints:
                raise ValueError(f"duplicate endpoint name {config.name!r}")
            self.endpoints[config.name] = _Endpoint(config)
        self.handler = handler
        self.cert_dir = cert_dir
        self.max_shells_per_user = int(max_shells_per_user)
        self.max_operations_per_shell = int(max_operations_per_shell)
        self.kerberos = kerberos
        for endpoint in self.endpoints.values():
            if "kerberos" in endpoint.config.auth and kerberos is None:
                raise ValueError(f"endpoint {endpoint.name} accepts Kerberos but the server has no KDC setup")
        self.certs: Optional[LabCertificates] = None
        self._ssl: Optional[ssl.SSLContext] = None
        self._stopping = threading.Event()
        self._started = False
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._threads_lock = threading.Lock()
        self._logon = threading.local()          # the logon of the request a connection thread answers
        self._connections: Dict[threading.Thread, socket.socket] = {}
        self._workers: List[threading.Thread] = []

    @property
    def ca_path(self) -> str:
        """PEM of the lab CA made at :meth:`start` (trust it to validate the https endpoints)."""
        return os.path.join(self.cert_dir, "ca.pem")

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Dict[str, int]:
        """Create the TLS material and NTLM account files, listen on every endpoint; return
        ``{endpoint name: port}``."""
        if self._started:
            raise RuntimeError("WsmanServer already started")
        os.makedirs(self.cert_dir, exist_ok=True)
        extra_hosts = sorted({ep.config.bind for ep in self.endpoints.values()} - {"127.0.0.1", ""})
        self.certs = make_lab_certificates(self.cert_dir, extra_hosts)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certs.cert_path, self.certs.key_path)
        self._ssl = context
        self._stopping.clear()
        try:
            for index, endpoint in enumerate(self.endpoints.values()):
                if "ntlm" in endpoint.config.auth or "credssp" in endpoint.config.auth:
                    endpoint.ntlm_file = endpoint.users.write_ntlm_file(
                        os.path.join(self.cert_dir, f"ntlm_users.{index}"))
                sock = socket.socket(socket.AF_INET6 if ":" in endpoint.config.bind else socket.AF_INET)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((endpoint.config.bind, endpoint.config.port))
                    sock.listen(64)
                except OSError:
                    sock.close()
                    raise
                sock.setblocking(False)
                endpoint.sock = sock
                endpoint.port = sock.getsockname()[1]
        except OSError as exc:
            self._close_listeners()
            raise OSError(exc.errno, f"cannot listen for endpoint {endpoint.name} on "
                                     f"{endpoint.config.bind}:{endpoint.config.port}: {exc.strerror}") from exc
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        for endpoint in self.endpoints.values():
            self._selector.register(endpoint.sock, selectors.EVENT_READ, endpoint)
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"{self.thread_prefix}accept", daemon=True)
        self._started = True
        self._accept_thread.start()
        LOG.info("%d WS-Management endpoints listening", len(self.endpoints))
        return {name: ep.port for name, ep in self.endpoints.items()}

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection, join the threads. Idempotent."""
        if not self._started:
            return
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._accept_thread.join(timeout)
        self._close_listeners()
        with self._threads_lock:
            connections = list(self._connections.items())
            workers = list(self._workers)
        for _thread, sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in [t for t, _ in connections] + workers:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                LOG.warning("thread %s did not stop in time", thread.name)
        for _thread, sock in connections:
            try:
                sock.close()
            except OSError:
                pass
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()
        for endpoint in self.endpoints.values():
            with endpoint.lock:
                endpoint.shells.clear()
        with self._threads_lock:
            self._connections.clear()
            self._workers.clear()
        self._started = False
        LOG.info("WS-Management endpoints stopped")

    def _close_listeners(self) -> None:
        for endpoint in self.endpoints.values():
            if endpoint.sock is not None:
                if self._selector is not None:
                    try:
                        self._selector.unregister(endpoint.sock)
                    except (KeyError, ValueError):
                        pass
                endpoint.sock.close()
                endpoint.sock = None

    def __enter__(self) -> "WsmanServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- faults and counters ------------------------------------------------------------------
    def _endpoint(self, name: str) -> _Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint named {name!r}") from None

    def set_fault(self, endpoint_name: str, kind: str, **args) -> None:
        """Inject a fault on one endpoint (it stays until :meth:`clear_faults`):

        * ``drop_after(n)``: answer ``n`` more HTTP requests (handshake legs count), then close
          the TCP connection of every further request without answering;
        * ``operation_timeout(n)``: answer the next ``n`` Receive requests with the
          OperationTimeout fault (2150858793) at once; the command keeps its output;
        * ``slow(seconds)``: delay every response by ``seconds``;
        * ``refuse_credentials()``: every request gets 401 (pywinrm: InvalidCredentialsError).
        """
        endpoint = self._endpoint(endpoint_name)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
        expected = {"drop_after": {"n"}, "operation_timeout": {"n"}, "slow": {"seconds"},
                    "refuse_credentials": set()}[kind]
        if set(args) != expected:
            raise TypeError(f"fault {kind} takes {sorted(expected) or 'no arguments'}, got {sorted(args)}")
        value = args.get("n", args.get("seconds"))
        if value is not None and value < 0:
            raise ValueError(f"fault {kind}: argument must not be negative")
        with endpoint.lock:
            faults = endpoint.faults
            if kind == "drop_after":
                faults.drop_after = int(value)
            elif kind == "operation_timeout":
                faults.operation_timeouts = int(value)
            elif kind == "slow":
                faults.slow = float(value)
            else:
                faults.refuse_credentials = True
        LOG.info("%s: fault %s %s", endpoint_name, kind, args or "")

    def clear_faults(self, endpoint_name: Optional[str] = None) -> None:
        """Remove every fault of one endpoint, or of all when ``endpoint_name`` is None."""
        targets = [self._endpoint(endpoint_name)] if endpoint_name is not None else self.endpoints.values()
        for endpoint in targets:
            with endpoint.lock:
                endpoint.faults = _Faults()

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Per endpoint: ``http_requests`` (every HTTP request, handshake legs included),
        ``commands`` and ``shells`` (created so far), ``open_shells`` (now),
        ``encrypted_requests`` (NTLM-sealed bodies), ``auth_failures`` (refused credentials)."""
        result = {}
        for name, endpoint in self.endpoints.items():
            with endpoint.lock:
                result[name] = dict(endpoint.counters, open_shells=len(endpoint.shells))
        return result

    def _check_drop(self, endpoint: _Endpoint) -> None:
        with endpoint.lock:
            remaining = endpoint.faults.drop_after
            if remaining is None:
                return
            if remaining <= 0:
                raise _Drop()
            endpoint.faults.drop_after = remaining - 1

    def _delay(self, endpoint: _Endpoint) -> None:
        with endpoint.lock:
            seconds = endpoint.faults.slow
        if seconds > 0:
            self._stopping.wait(seconds)

    def _kerberos_acceptor(self, endpoint: _Endpoint) -> KerberosAcceptor:
        fqdn = endpoint.config.fqdn or ""
        return KerberosAcceptor(endpoint.users, fqdn, self.kerberos.keytab_for(fqdn), self.kerberos.realms,
                                self._cbt_hash(endpoint))

    def _cbt_hash(self, endpoint: _Endpoint) -> Optional[bytes]:
        if endpoint.config.scheme == "https" and self.certs is not None:
            return self.certs.tls_server_end_point
        return None

    # ---- connections --------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(timeout=1.0)
            except (OSError, ValueError):
                if self._stopping.is_set():
                    break
                raise
            for key, _mask in events:
                endpoint = key.data
                if endpoint is None:                 # the wake-up socket
                    continue
                try:
                    conn, address = key.fileobj.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if not self._stopping.is_set():
                        LOG.warning("%s: accept failed: %s", endpoint.name, exc)
                    continue
                conn.setblocking(True)
                # headers and body go out in separate writes: without NODELAY, Nagle and the
                # client's delayed ACK would add 40 ms to every response
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                thread = threading.Thread(target=self._serve_connection, args=(endpoint, conn, address),
                                          name=f"{self.thread_prefix}conn-{endpoint.name}-{address[1]}",
                                          daemon=True)
                with self._threads_lock:
                    self._connections[thread] = conn
                thread.start()

    def _serve_connection(self, endpoint: _Endpoint, conn: socket.socket, address) -> None:
        sock = conn
        try:
            if endpoint.config.scheme == "https":
                conn.settimeout(TLS_HANDSHAKE_TIMEOUT)
                sock = self._ssl.wrap_socket(conn, server_side=True)
                with self._threads_lock:
                    self._connections[threading.current_thread()] = sock
            _ConnectionHandler(sock, address, (self, endpoint))
        except (OSError, ssl.SSLError) as exc:
            if not self._stopping.is_set():
                LOG.debug("%s: connection from %s ended: %s", endpoint.name, address, exc)
        except Exception:  # noqa: BLE001 - a lab bug must not kill the server silently
            LOG.exception("%s: connection handler failed", endpoint.name)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._threads_lock:
                self._connections.pop(threading.current_thread(), None)

    # ---- WS-Management operations -------------------------------------------------------------
    def _dispatch(self, endpoint: _Endpoint, username: str, body: bytes, client_ip: str,
                  logon: Optional[Logon] = None) -> Tuple[int, bytes]:
        """Answer one SOAP request: ``(HTTP status, response envelope)``."""
        self._logon.value = logon or Logon("anonymous", False)
        relates_to = ""
        try:
            req = soap.parse_request(body)
            relates_to = req.message_id
            operations = {
                soap.ACTION_CREATE: self._op_create,
                soap.ACTION_COMMAND: self._op_command,
                soap.ACTION_SEND: self._op_send,
                soap.ACTION_RECEIVE: self._op_receive,
                soap.ACTION_SIGNAL: self._op_signal,
                soap.ACTION_DELETE: self._op_delete,
            }
            operation = operations.get(req.action)
            if operation is None:
                raise soap.fault_action_not_supported(req.action)
            if req.resource_uri.lower() != soap.RESOURCE_CMD:
                raise soap.fault_unknown_resource(req.resource_uri)
            return 200, operation(endpoint, username, req, client_ip)
        except soap.WsmanFault as fault:
            LOG.info("%s: fault %s (%s)", endpoint.name, fault.code, fault.message.strip())
            return 500, soap.fault_envelope(fault, relates_to, endpoint.name)

    def _shell(self, endpoint: _Endpoint, req: soap.Request) -> _Shell:
        """The request's shell (caller holds the endpoint lock)."""
        shell = endpoint.shells.get((req.shell_id or "").upper())
        if shell is None:
            raise soap.fault_shell_not_found(req.shell_id or "")
        return shell

    def _op_create(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        shell_node = req.body if req.body is not None and req.body.tag.endswith("}Shell") else None

        def child(name: str, default: str) -> str:
            node = shell_node.find(f"rsp:{name}", soap.NS) if shell_node is not None else None
            return (node.text or "").strip() if node is not None and node.text else default

        with endpoint.lock:
            owned = sum(1 for s in endpoint.shells.values() if s.owner == username)
            if owned >= self.max_shells_per_user:
                raise soap.fault_shell_quota(self.max_shells_per_user)
            shell = _Shell(str(uuid.uuid4()).upper(), username, child("InputStreams", "stdin"),
                           child("OutputStreams", "stdout stderr"), req.options.get("WINRS_CODEPAGE", "437"))
            # The shell runs with the logon that created it (its token), whatever later requests use.
            shell.logon = getattr(self._logon, "value", None) or shell.logon
            endpoint.shells[shell.id] = shell
            endpoint.counters["shells"] += 1
        host = endpoint.config.bind
        host = f"[{host}]" if ":" in host else host
        address = f"{endpoint.config.scheme}://{host}:{endpoint.port}/wsman"
        return soap.create_response(req, address, shell.id, username, client_ip,
                                    shell.input_streams, shell.output_streams)

    def _op_command(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        line = req.body if req.body is not None and req.body.tag.endswith("}CommandLine") else None
        if line is None:
            raise soap.fault_bad_message("Command has no rsp:CommandLine")
        command = line.find("rsp:Command", soap.NS)
        parts = [command.text or "" if command is not None else ""]
        parts += [arg.text or "" for arg in line.findall("rsp:Arguments", soap.NS)]
        command_line = " ".join(parts)
        with endpoint.lock:
            shell = self._shell(endpoint, req)
            if shell.operations >= self.max_operations_per_shell:
                raise soap.fault_operations_quota(self.max_operations_per_shell)
            shell.operations += 1
            cmd = _Command(str(uuid.uuid4()).upper(), command_line)
            shell.commands[cmd.id] = cmd
            endpoint.counters["commands"] += 1
        return soap.command_response(req, cmd.id)

    def _command(self, endpoint: _Endpoint, req: soap.Request, command_id: Optional[str]) -> _Command:
        """The request's command (caller holds the endpoint lock)."""
        shell = self._shell(endpoint, req)
        cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise soap.fault_command_not_found(shell.id, command_id or "")
        return cmd

    def _op_send(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        start = None
        with endpoint.lock:
            for stream in req.findall("rsp:Stream") or []:
                if stream.get("Name", "stdin") != "stdin":
                    continue
                cmd = self._command(endpoint, req, stream.get("CommandId"))
                if cmd.started:
                    continue                     # stdin already closed: the data goes nowhere
                try:
                    cmd.stdin.append(base64.b64decode((stream.text or "").strip()))
                except binascii.Error:
                    raise soap.fault_bad_message("stdin is not base64") from None
                if stream.get("End", "false").lower() == "true":
                    cmd.started = True
                    start = cmd
        if start is not None:
            self._run(endpoint, req.shell_id, start, username, self._shell_logon(endpoint, req))
        return soap.send_response(req)

    def _shell_logon(self, endpoint: _Endpoint, req: soap.Request) -> Logon:
        with endpoint.lock:
            shell = endpoint.shells.get((req.shell_id or "").upper())
            return shell.logon if shell is not None else Logon("anonymous", False)

    def _run(self, endpoint: _Endpoint, shell_id: str, cmd: _Command, username: str,
             logon: Optional[Logon] = None) -> None:
        """Run the command (``cmd.started`` already set) on a worker thread."""
        stdin = b"".join(cmd.stdin)
        cmd.stdin = []
        if len(cmd.command_line) > CMD_LINE_LIMIT:
            cmd.stdout, cmd.stderr, cmd.exit_code = b"", CMD_LINE_TOO_LONG, 1
            cmd.done.set()
            return

        def work() -> None:
            try:
                if getattr(self.handler, "takes_logon", False):
                    out, err, code = self.handler(endpoint.name, username, cmd.command_line, stdin, logon=logon)
                else:
                    out, err, code = self.handler(endpoint.name, username, cmd.command_line, stdin)
                cmd.stdout = out.encode("utf-8") if isinstance(out, str) else bytes(out or b"")
                cmd.stderr = err.encode("utf-8") if isinstance(err, str) else bytes(err or b"")
                cmd.exit_code = int(code)
            except Exception as exc:  # noqa: BLE001 - reported like a crashed process
                LOG.exception("%s: handler failed for shell %s", endpoint.name, shell_id)
                cmd.stdout, cmd.exit_code = b"", 1
                cmd.stderr = f"xconlab: the command handler failed: {type(exc).__name__}: {exc}\r\n".encode()
            finally:
                cmd.done.set()

        thread = threading.Thread(target=work, name=f"{self.thread_prefix}cmd-{endpoint.name}", daemon=True)
        with self._threads_lock:
            self._workers = [t for t in self._workers if t.is_alive()]
            self._workers.append(thread)
        thread.start()

    def _op_receive(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        desired = req.find("rsp:DesiredStream")
        command_id = desired.get("CommandId") if desired is not None else None
        start = False
        with endpoint.lock:
            if command_id is None:               # no CommandId: the shell's only/first command
                shell = self._shell(endpoint, req)
                command_id = next(iter(shell.commands), None)
            cmd = self._command(endpoint, req, command_id)
            if endpoint.faults.operation_timeouts > 0:
                endpoint.faults.operation_timeouts -= 1
                raise soap.fault_operation_timeout()
            if not cmd.started:                  # no (complete) stdin: EOF now
                cmd.started = start = True
        if start:
            self._run(endpoint, req.shell_id, cmd, username, self._shell_logon(endpoint, req))
        deadline = time.monotonic() + max(0.0, req.operation_timeout)
        while not cmd.done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                raise soap.fault_operation_timeout()
        # Output in envelopes no larger than the client accepts (base64 grows by 4/3).
        budget = max(4096, (req.max_envelope - 4096) * 3 // 4)
        with endpoint.lock:
            chunks = []
            out = cmd.stdout[cmd.sent_out:cmd.sent_out + budget]
            cmd.sent_out += len(out)
            budget -= len(out)
            err = cmd.stderr[cmd.sent_err:cmd.sent_err + budget]
            cmd.sent_err += len(err)
            out_end = cmd.sent_out >= len(cmd.stdout)
            err_end = cmd.sent_err >= len(cmd.stderr)
            if out or out_end:
                chunks.append(("stdout", out, out_end))
            if err or err_end:
                chunks.append(("stderr", err, err_end))
            finished = out_end and err_end
        return soap.receive_response(req, cmd.id, chunks, cmd.exit_code if finished else None)

    def _op_signal(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        signal = req.body if req.body is not None and req.body.tag.endswith("}Signal") else None
        command_id = signal.get("CommandId") if signal is not None else None
        with endpoint.lock:
            cmd = self._command(endpoint, req, command_id)
            # terminate: the command is gone (a handler still running finishes unobserved)
            self._shell(endpoint, req).commands.pop(cmd.id, None)
        return soap.signal_response(req)

    def _op_delete(self, endpoint: _Endpoint, username: str, req: soap.Request, client_ip: str) -> bytes:
        with endpoint.lock:
            shell = self._shell(endpoint, req)
            del endpoint.shells[shell.id]
        return soap.delete_response(req)
