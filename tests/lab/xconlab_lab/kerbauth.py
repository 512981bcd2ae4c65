"""Kerberos and CredSSP logons to the emulated WinRM listeners, and what each leaves the host.

Both acceptors have :class:`.ntlmauth.NtlmAcceptor`'s shape (``step(token)`` -> token or None,
``complete``, ``username``, ``seal``/``unseal`` for message encryption) plus ``delegated``: whether
the logon left the host something it can use to act as the user on *another* machine. That is the
whole difference between the logons for the second hop (shared/domain/real-world-facts.md, "The
management host and the second hop"):

* **Kerberos** (``Authorization: Negotiate``/``Kerberos`` with a raw Kerberos token, as pywinrm
  sends it): a real MIT GSS-API acceptor holding only this host's key (``HTTP/<fqdn>`` from its own
  keytab, the lab's KDC made it), so a ticket for another host's name is refused. ``delegated`` is
  true when the client forwarded its TGT (GSS_C_DELEG_FLAG: a forwardable TGT, ``kinit -f``, and
  the client asking for delegation; the KDC marks the lab's HTTP principals ``ok_as_delegate``, as
  "trusted for delegation" does in Active Directory).
* **CredSSP** ([MS-CSSP], pyspnego's acceptor): TLS inside the HTTP exchange, NTLM inside the TLS
  (the lab's CredSSP offers NTLM as the inner logon), then the client sends the user's name and
  password (TSPasswordCreds) through the TLS channel. ``delegated`` is true once they arrived and
  are the account's: the host can log on as the user anywhere.

Basic and NTLM logons never delegate: the host gets neither a TGT nor a password.

Message encryption: Kerberos uses the NTLM framing ([MS-WSMV] 2.2.9.1.1/2, GSS wrap with a
separate header); CredSSP ([MS-WSMV] 2.2.9.1.3) frames a 4-byte trailer length and the TLS record
of the message, in parts of at most 16 KiB (``multipart/x-multi-encrypted``).
"""
from __future__ import annotations

import base64
import struct
from typing import Dict, Optional

import spnego

from .ntlmauth import Acceptor, AuthError, UserTable, WinrmSealing, _UserFile, channel_bindings

KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")     # 1.2.840.113554.1.2.2 (Kerberos V5)
SPNEGO_OID_DER = bytes.fromhex("06062b0601050502")         # 1.3.6.1.5.5.2


def is_kerberos_token(token: bytes) -> bool:
    """A raw GSS-API Kerberos initial token (``[APPLICATION 0]`` holding the krb5 mech OID)."""
    return token[:1] == b"\x60" and KRB5_OID_DER in token[:20]


def is_spnego_token(token: bytes) -> bool:
    return token[:1] == b"\x60" and SPNEGO_OID_DER in token[:20]


class KerberosAcceptor(Acceptor, WinrmSealing):
    """Server side of one Kerberos logon (one per TCP connection).

    ``realms`` maps a realm (``CONTOSO.EXAMPLE``) to the NetBIOS domain of its accounts (``CONTOSO``):
    ``xcon@CONTOSO.EXAMPLE`` is the account ``CONTOSO\\xcon`` of the endpoint.
    """

    def __init__(self, users: UserTable, fqdn: str, keytab: str, realms: Dict[str, str],
                 cbt_hash: Optional[bytes] = None) -> None:
        import gssapi  # the lab's Kerberos needs python-gssapi (pyspnego[kerberos])

        self.users = users
        self.realms = {k.upper(): v for k, v in realms.items()}
        name = gssapi.Name(f"HTTP@{fqdn}", gssapi.NameType.hostbased_service)
        try:
            credential = gssapi.Credentials(name=name, usage="accept", store={b"keytab": keytab.encode()})
        except gssapi.exceptions.GSSError as exc:
            raise AuthError(f"no key for HTTP/{fqdn} in {keytab}: {exc}") from None
        # pyspnego's GSSAPI proxy takes a ready credential; with it the acceptor knows only this key.
        self.context = spnego.server(hostname=fqdn, service="HTTP", protocol="kerberos",
                                     channel_bindings=channel_bindings(cbt_hash), _gssapi_credential=credential)
        self.username = None
        self.principal: Optional[str] = None
        self.delegated = False

    def step(self, token: bytes) -> Optional[bytes]:
        out = self._step(token, "Kerberos logon")
        if not self.context.complete:
            return out
        principal = self.context.client_principal or ""
        user, _, realm = principal.rpartition("@")
        domain = self.realms.get(realm.upper())
        name = self.users.resolve(domain, user) if domain is not None else None
        if name is None:
            raise AuthError(f"Kerberos principal {principal!r} is not an account of this endpoint")
        gss_context = getattr(self.context, "_context", None)   # the python-gssapi SecurityContext
        self.delegated = bool(getattr(gss_context, "delegated_creds", None) is not None
                              or self.context.context_attr & spnego.ContextReq.delegate)
        self.principal, self.username = principal, name
        return out


class CredsspAcceptor(Acceptor):
    """Server side of one CredSSP logon (one per TCP connection): TLS, NTLM inside, then the
    user's delegated password. ``user_file`` is the endpoint's NTLM account file."""

    def __init__(self, users: UserTable, user_file: str) -> None:
        self.users = users
        self.user_file = user_file
        with _UserFile(user_file):   # pyspnego's acceptor: its own self-signed TLS key (made once)
            inner = spnego.server(protocol="negotiate")
            self.context = spnego.server(protocol="credssp", credssp_negotiate_context=inner)
        self.username = None
        self.delegated = False

    def step(self, token: bytes) -> Optional[bytes]:
        out = self._step(token, "CredSSP logon")
        if not self.context.complete:
            return out
        creds = self.context.get_extra_info("client_credential")
        domain = getattr(creds, "domain_name", "") or ""
        user = getattr(creds, "username", None) or getattr(creds, "user_name", "") or ""
        password = getattr(creds, "password", None)
        name = self.users.resolve(domain, user)
        if name is None or password is None or self.users.users.get(name) != password:
            # the logon itself (NTLM inside) succeeded, but what was delegated is not the account's
            raise AuthError(f"CredSSP: the delegated credentials of {domain}\\{user} are not the account's")
        self.username, self.delegated = name, True
        return out

    def seal(self, data: bytes) -> bytes:
        record = self.context.wrap(data).data
        trailer = max(0, len(record) - len(data) - 5)   # what follows the data in the TLS record
        return struct.pack("<I", trailer) + record

    def unseal(self, blob: bytes) -> bytes:
        if len(blob) < 4:
            raise AuthError("encrypted part too short")
        try:
            return self.context.unwrap(blob[4:]).data
        except Exception as exc:
            raise AuthError(f"cannot decrypt the message: {type(exc).__name__}: {exc}") from None


def b64(token: Optional[bytes]) -> str:
    return base64.b64encode(token or b"").decode()
