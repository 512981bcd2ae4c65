"""Authentication and message encryption of the emulated WinRM listeners.

* :class:`UserTable` - the accounts of one endpoint and how a name a client sends maps to one of
  them (``DOMAIN\\user`` compared case-insensitively; a client that sends no domain matches the
  user part; an account configured without a domain matches a client that sends none).
* :class:`NtlmAcceptor` - the server side of NTLM for one TCP connection (pyspnego's acceptor).
  pyspnego checks the client's answer against the flat file named by the environment variable
  ``NTLM_USER_FILE`` (smbpasswd lines: the password's LM and NT hashes). Endpoints of one process may hold the same
  account with different passwords, so every endpoint gets its own file and the variable is
  pointed at it, under a process-wide lock, for exactly the calls that read it.
* :func:`unwrap_request` / :func:`wrap_response` - WinRM's NTLM message encryption
  ([MS-WSMV] 2.2.9.1.1, what pywinrm's ``winrm/encryption.py`` sends and expects):
  ``multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"`` bodies whose
  octet-stream part is a 4-byte little-endian signature length, the signature and the sealed SOAP.
"""
from __future__ import annotations

import os
import struct
import threading
from typing import Dict, Iterable, List, Optional, Tuple

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1

ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
CREDSSP_CHUNK = 16384          # [MS-WSMV] 2.2.9.1.3: CredSSP encrypts at most 16 KiB per part
_BOUNDARY = b"--Encrypted Boundary"
_OCTET_HEADER = b"\tContent-Type: application/octet-stream\r\n"

# NTLM_USER_FILE is process-global; every acceptor call that may read it holds this lock.
_ENV_LOCK = threading.Lock()


class AuthError(Exception):
    """The client's credentials (or its NTLM token) were not accepted."""


def split_user(name: str) -> Tuple[str, str]:
    """``DOMAIN\\user`` -> ``("DOMAIN", "user")``; ``user`` -> ``("", "user")``."""
    domain, _, user = name.rpartition("\\")
    return domain, user


class UserTable:
    """The accounts of one endpoint: ``{"DOMAIN\\user": password}`` as configured."""

    def __init__(self, users: Dict[str, str]) -> None:
        self.users = dict(users)

    def resolve(self, domain: str, user: str) -> Optional[str]:
        """The configured account name a client's ``domain``/``user`` stands for, or None."""
        domain, user = (domain or "").upper(), (user or "").upper()
        by_user_part = []
        for name in self.users:
            conf_domain, conf_user = split_user(name)
            if conf_user.upper() != user:
                continue
            if conf_domain.upper() == domain:
                return name
            by_user_part.append((conf_domain, name))
        if not domain and len(by_user_part) == 1:
            return by_user_part[0][1]          # client sent no domain: the one account of that name
        for conf_domain, name in by_user_part:
            if not conf_domain:
                return name                    # account configured without a domain
        return None

    def check_password(self, login: str, password: str) -> Optional[str]:
        """Basic auth: the configured account name when ``login``/``password`` match, else None."""
        name = self.resolve(*split_user(login))
        if name is not None and self.users[name] == password:
            return name
        return None

    def ntlm_lines(self) -> List[str]:
        """``NTLM_USER_FILE`` lines in smbpasswd form, ``DOMAIN\\user:0:LM:NT:[U]:LCT-00000000`` and
        ``user:0:LM:NT:[U]:LCT-00000000`` per account: the LM and NT one-way functions of the
        password, computed once here (as a Windows SAM keeps them) instead of again at every
        authentication, which pyspnego does for ``DOMAIN:user:password`` lines."""
        lines: List[str] = []
        for name, password in self.users.items():
            domain, user = split_user(name)
            hashes = f"0:{lmowfv1(password).hex().upper()}:{ntowfv1(password).hex().upper()}:[U]:LCT-00000000"
            for line in (f"{domain}\\{user}:{hashes}" if domain else f"{user}:{hashes}", f"{user}:{hashes}"):
                if line not in lines:
                    lines.append(line)
        return lines

    def write_ntlm_file(self, path: str) -> str:
        """Write this endpoint's ``NTLM_USER_FILE`` (owner-readable only) and return its path."""
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.ntlm_lines()) + "\n")
        os.replace(path + ".tmp", path)
        return path


class _UserFile:
    """Context manager pointing ``NTLM_USER_FILE`` at one file while held."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.saved: Optional[str] = None

    def __enter__(self) -> None:
        _ENV_LOCK.acquire()
        self.saved = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = self.path

    def __exit__(self, *exc) -> None:
        try:
            if self.saved is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self.saved
        finally:
            _ENV_LOCK.release()


def channel_bindings(cbt_hash: Optional[bytes]) -> Optional[GssChannelBindings]:
    """The https channel binding a client may send (``tls-server-end-point`` of the certificate)."""
    if cbt_hash is None:
        return None
    return GssChannelBindings(application_data=b"tls-server-end-point:" + cbt_hash)


class Acceptor:
    """What every logon acceptor shares: ``complete`` once ``username`` is known, and one context
    step with pyspnego's failures (and malformed tokens) turned into ``AuthError``."""

    context = None
    username: Optional[str] = None
    user_file: Optional[str] = None   # an NTLM account file pyspnego reads during the step

    @property
    def complete(self) -> bool:
        return self.username is not None

    def _step(self, token: bytes, label: str) -> Optional[bytes]:
        try:
            if self.user_file:
                with _UserFile(self.user_file):
                    return self.context.step(token)
            return self.context.step(token)
        except SpnegoError as exc:
            raise AuthError(f"{label} failed: {exc}") from None
        except Exception as exc:  # a malformed token is a failed logon, not a server error
            raise AuthError(f"{label}: token rejected: {type(exc).__name__}: {exc}") from None


class WinrmSealing:
    """WinRM message encryption with an established context (NTLM or Kerberos: ``self.context``):
    each encrypted part is the signature length (LE uint32), the signature, then the sealed data."""

    context = None

    def seal(self, data: bytes) -> bytes:
        wrapped = self.context.wrap_winrm(data)
        return struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data

    def unseal(self, blob: bytes) -> bytes:
        if len(blob) < 4:
            raise AuthError("encrypted part too short")
        sig_len = struct.unpack("<I", blob[:4])[0]
        if sig_len > len(blob) - 4:
            raise AuthError("encrypted part has a bad signature length")
        try:
            return self.context.unwrap_winrm(blob[4:4 + sig_len], blob[4 + sig_len:])
        except SpnegoError as exc:
            raise AuthError(f"cannot decrypt the message: {exc}") from None


class NtlmAcceptor(Acceptor, WinrmSealing):
    """Server side of one NTLM exchange (one per TCP connection, used by one thread).

    ``step(token)`` returns the token to send back (the challenge) or None once the client is
    authenticated; ``username`` is then the configured account name. ``AuthError`` on failure.
    ``cbt_hash`` is the server certificate's ``tls-server-end-point`` hash on https: a client
    that sends channel bindings must send these (clients that send none are accepted).
    """

    def __init__(self, users: UserTable, user_file: str, cbt_hash: Optional[bytes] = None) -> None:
        self.users = users
        self.user_file = user_file
        with _UserFile(user_file):
            self.context = spnego.server(protocol="ntlm", channel_bindings=channel_bindings(cbt_hash))
        self.username = None

    def step(self, token: bytes) -> Optional[bytes]:
        out = self._step(token, "NTLM authentication")
        if not self.context.complete:
            return out
        principal = self.context.client_principal or ""
        name = self.users.resolve(*split_user(principal))
        if name is None:
            raise AuthError(f"NTLM principal {principal!r} is not an account of this endpoint")
        self.username = name
        return out



def is_encrypted(content_type: str) -> bool:
    """Whether a request's Content-Type announces WinRM message encryption (NTLM/Kerberos
    ``HTTP-SPNEGO-session-encrypted`` or CredSSP ``HTTP-CredSSP-session-encrypted``)."""
    return encryption_protocol(content_type) is not None


def encryption_protocol(content_type: str) -> Optional[str]:
    """The ``protocol=`` of an encrypted WinRM body (lower case), None when it is not one."""
    lowered = (content_type or "").lower()
    if not (lowered.startswith("multipart/encrypted") or lowered.startswith("multipart/x-multi-encrypted")):
        return None
    for protocol in (ENCRYPTED_PROTOCOL, CREDSSP_PROTOCOL):
        if protocol.lower() in lowered:
            return protocol.lower()
    return None


def _parts(body: bytes) -> Iterable[Tuple[bytes, bytes]]:
    """(header part, payload part) pairs of an encrypted multipart body."""
    chunks = [c for c in body.split(_BOUNDARY + b"\r\n") if c]
    if len(chunks) % 2:
        raise AuthError("encrypted body does not have header/payload pairs")
    for index in range(0, len(chunks), 2):
        yield chunks[index], chunks[index + 1]


def unwrap_request(acceptor, body: bytes) -> bytes:
    """Decrypt an encrypted WinRM request body with the connection's context (any acceptor with
    ``unseal``: NTLM, Kerberos, CredSSP)."""
    message = b""
    for header, payload in _parts(body):
        if b"Length=" not in header:
            raise AuthError("encrypted body has no Length=")
        try:
            expected = int(header.split(b"Length=")[1].split(b"\r\n")[0].strip())
        except ValueError:
            raise AuthError("encrypted body has a bad Length=") from None
        end = _BOUNDARY + b"--\r\n"
        if payload.endswith(end):
            payload = payload[:-len(end)]
        if not payload.startswith(_OCTET_HEADER):
            raise AuthError("encrypted payload part has no octet-stream header")
        plain = acceptor.unseal(payload[len(_OCTET_HEADER):])
        if len(plain) != expected:
            raise AuthError("decrypted length differs from Length=")
        message += plain
    return message


def content_type_for(protocol: str, size: int) -> str:
    """The Content-Type of an encrypted response of ``size`` plain bytes."""
    kind = "multipart/encrypted"
    if protocol == CREDSSP_PROTOCOL and size > CREDSSP_CHUNK:
        kind = "multipart/x-multi-encrypted"
    return f'{kind};protocol="{protocol}";boundary="Encrypted Boundary"'


def wrap_response(acceptor, message: bytes, protocol: str = ENCRYPTED_PROTOCOL) -> bytes:
    """Encrypt a SOAP response for the client, framed the way pywinrm parses it (CredSSP: one
    header/payload pair per 16 KiB)."""
    step = CREDSSP_CHUNK if protocol == CREDSSP_PROTOCOL else max(1, len(message))
    out = b""
    for start in range(0, max(1, len(message)), step):
        chunk = message[start:start + step]
        out += (_BOUNDARY + b"\r\n"
                + b"\tContent-Type: " + protocol.encode() + b"\r\n"
                + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
                + str(len(chunk)).encode() + b"\r\n"
                + _BOUNDARY + b"\r\n"
                + _OCTET_HEADER + acceptor.seal(chunk))
    return out + _BOUNDARY + b"--\r\n"
