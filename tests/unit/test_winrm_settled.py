"""xcon.winrm_client._settled: the environment's proxies are read once per session, and still used."""

from __future__ import annotations

import types

import requests
from requests.utils import resolve_proxies

from xcon import winrm_client

URL = "http://192.0.2.7:5985/wsman"


def _session(auth):
    # as pywinrm's Transport.build_session makes it: the environment merged in once, for the endpoint
    session = requests.Session()
    session.proxies = session.merge_environment_settings(URL, {}, None, None, None)["proxies"]
    session.auth = auth
    return session


def _proxies(session):
    request = requests.Request("POST", URL, data=b"x").prepare()
    return resolve_proxies(request, session.proxies, session.trust_env)


def test_an_environment_proxy_still_carries_every_request(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = _session(requests.auth.HTTPBasicAuth("u", "p"))
    before = _proxies(session)
    winrm_client._settled(types.SimpleNamespace(transport=types.SimpleNamespace(session=session)))
    assert session.trust_env is False
    assert _proxies(session) == before and before["http"] == "http://proxy.example:3128"


def test_no_proxy_for_the_endpoint_still_bypasses(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "192.0.2.7")
    session = _session(requests.auth.HTTPBasicAuth("u", "p"))
    winrm_client._settled(types.SimpleNamespace(transport=types.SimpleNamespace(session=session)))
    assert "http" not in _proxies(session)


def test_a_session_without_an_auth_handler_keeps_reading_the_environment():
    session = _session(None)   # certificate auth: requests would also consult ~/.netrc
    winrm_client._settled(types.SimpleNamespace(transport=types.SimpleNamespace(session=session)))
    assert session.trust_env is True


def test_the_handshake_goes_out_settled_with_the_proxies_build_session_merged(monkeypatch):
    # pywinrm's build_session ends with setup_encryption (over HTTP with NTLM, Kerberos or CredSSP):
    # the session is settled before that handshake's requests, with the proxies merged for the endpoint.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    seen = []
    transport = types.SimpleNamespace(setup_encryption=lambda session: seen.append((session.trust_env, _proxies(session))))
    winrm_client._settled_at_handshake(types.SimpleNamespace(transport=transport))
    session = _session(requests.auth.HTTPBasicAuth("u", "p"))
    expected = _proxies(session)
    transport.setup_encryption(session)
    assert seen == [(False, expected)] and expected["http"] == "http://proxy.example:3128"


def test_a_real_protocol_is_settled_at_its_handshake():
    protocol = winrm_client.WinRMClient({"ansible_host": "127.0.0.1", "ansible_user": "u", "ansible_password": "p",
                                         "ansible_winrm_transport": "ntlm", "ansible_port": 1,
                                         "ansible_winrm_scheme": "http"})._protocol("ntlm")
    session = _session(requests.auth.HTTPBasicAuth("u", "p"))
    try:
        protocol.transport.setup_encryption(session)   # the handshake itself fails: nothing listens on port 1
    except Exception:  # noqa: BLE001
        pass
    assert session.trust_env is False
