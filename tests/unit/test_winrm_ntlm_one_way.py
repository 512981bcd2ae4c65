"""xcon.winrm_client._ntlm_one_way: the NTLM transport hands pyspnego the password's LM and NT one-way
functions (computed once per process) instead of the password (hashed again, LM by pure-Python DES,
for every session). The proof is an NTLM exchange with pyspnego's own acceptor, which checks the
client's answers against the plain password."""

from __future__ import annotations

import pytest
import spnego

from xcon import winrm_client as wc

USER, PASSWORD = "CONTOSO\\xcon", "S3cret! longer than 14"   # no LM hash on Windows past 14 characters


def _exchange(monkeypatch, tmp_path, client_secret, stored_password=PASSWORD, level="3"):
    """A full NTLM exchange (negotiate, challenge, authenticate) against pyspnego's acceptor whose
    account file holds the plain password; then one sealed message each way."""
    store = tmp_path / "ntlm_users"
    store.write_text(f"CONTOSO:xcon:{stored_password}\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(store))
    monkeypatch.setenv("LM_COMPAT_LEVEL", level)     # 1: NTLMv1 (the LM hash is used), 3: NTLMv2 only
    client = spnego.client(USER, client_secret, protocol="ntlm")
    server = spnego.server(protocol="ntlm")
    token = client.step()
    while not client.complete:
        token = client.step(server.step(token))
    server.step(token)
    assert server.complete
    sealed = client.wrap(b"request", encrypt=True).data
    return server.unwrap(sealed).data


@pytest.mark.parametrize("password", [PASSWORD, "Short7!"])
@pytest.mark.parametrize("level", ["1", "3"])
def test_the_one_way_form_authenticates_as_the_password_does(monkeypatch, tmp_path, password, level):
    hashed = wc._ntlm_one_way(password)
    assert hashed != password and password not in hashed and len(hashed) == 65
    assert _exchange(monkeypatch, tmp_path, hashed, password, level) == b"request"
    assert _exchange(monkeypatch, tmp_path, password, password, level) == b"request"


def test_the_one_way_form_of_a_wrong_password_is_refused(monkeypatch, tmp_path):
    try:
        _exchange(monkeypatch, tmp_path, wc._ntlm_one_way("wrong"))
    except spnego.exceptions.SpnegoError:
        return
    raise AssertionError("the acceptor took the one-way form of a wrong password")


def test_a_password_given_as_its_one_way_form_is_passed_on_as_it_was():
    hashed = wc._ntlm_one_way(PASSWORD)
    assert wc._ntlm_one_way(hashed) == hashed


def test_only_the_ntlm_transport_gets_the_one_way_form():
    seen = {}
    for transport in ("ntlm", "basic"):
        client = wc.WinRMClient({"ansible_host": "exin", "ansible_port": 5985, "ansible_user": USER,
                                 "ansible_password": PASSWORD, "ansible_winrm_transport": transport})
        seen[transport] = client._protocol(transport).transport.password
    assert seen == {"ntlm": wc._ntlm_one_way(PASSWORD), "basic": PASSWORD}


def test_a_failure_that_quotes_the_one_way_form_is_masked():
    client = wc.WinRMClient({"ansible_host": "exin", "ansible_port": 5985, "ansible_user": USER,
                             "ansible_password": PASSWORD, "ansible_winrm_transport": "ntlm"})
    error = client._translate(RuntimeError(f"bad credential {wc._ntlm_one_way(PASSWORD)}"), "open shell")
    assert wc._ntlm_one_way(PASSWORD) not in str(error) and str(error).endswith("bad credential ********")


@pytest.mark.parametrize("password", [PASSWORD, "Short7!", "pässwort"])
def test_pyspnego_holds_the_same_lm_and_nt_hashes_either_way(password):
    """Both hashes, LM included (NTLMv1 without extended session security and the LM session key use
    it; the exchanges above do not), are what pyspnego derives from the password itself."""
    from spnego._credential import unify_credentials
    from spnego._ntlm import _NTLMCredential

    (from_password,) = unify_credentials(USER, password)
    (from_one_way,) = unify_credentials(USER, wc._ntlm_one_way(password))
    plain, hashed = _NTLMCredential(from_password), _NTLMCredential(from_one_way)
    assert (hashed.domain, hashed.username, hashed.lm_hash, hashed.nt_hash) == \
        (plain.domain, plain.username, plain.lm_hash, plain.nt_hash)
