"""The SSRF guard of media_jobs.downloads, without any network traffic.

Only IP literals and numeric spellings reach the real resolver (they never leave the machine);
host names are answered by a monkeypatched ``socket.getaddrinfo``. ``httpx.Client`` is replaced
by a tripwire, so any test that got as far as opening a connection fails loudly.
"""

from __future__ import annotations

import socket

import pytest

from media_jobs import downloads
from media_jobs.downloads import DownloadRefused, check_url, download

REAL_GETADDRINFO = socket.getaddrinfo
FAKE_DNS = {
    "example.com": ["93.184.216.34"],
    "intranet.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "192.168.0.10"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "v6public.example": ["2606:4700:4700::1111"],
}


def fake_getaddrinfo(host, port, *args, **kwargs):
    if host in FAKE_DNS:
        result = []
        for address in FAKE_DNS[host]:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result
    if host.endswith(".example") or host.endswith(".com"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return REAL_GETADDRINFO(host, port, *args, **kwargs)  # literals, localhost: no network


class NoNetworkClient:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the guard let a forbidden URL through to httpx")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(downloads.socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(downloads.httpx, "Client", NoNetworkClient)


FORBIDDEN = [
    "http://127.0.0.1/files/a.png",
    "http://127.0.0.1:8000/files/a.png",
    "http://localhost/files/a.png",
    "http://10.0.0.5/a.png",
    "http://172.16.3.4/a.png",
    "http://192.168.1.1/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/a.png",
    "http://0.0.0.0/a.png",
    "http://[::1]/a.png",
    "http://[fe80::1]/a.png",
    "http://[fc00::1]/a.png",
    "http://[::ffff:127.0.0.1]/a.png",
    "http://[::ffff:169.254.169.254]/a.png",
    "http://224.0.0.1/a.png",
    "http://[ff0e::1]/a.png",
    "http://255.255.255.255/a.png",
    "http://intranet.example/a.png",
    "http://metadata.example/latest/meta-data/",
    "http://mixed.example/a.png",
    "http://mapped.example/a.png",
    "http://2130706433/a.png",
    "http://0x7f.1/a.png",
    "http://127.1/a.png",
    "https://127.0.0.1/a.png",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_forbidden_addresses_are_refused(url):
    with pytest.raises(DownloadRefused, match="private or local network"):
        check_url(url, trusted_hosts=())
    with pytest.raises(DownloadRefused, match="private or local network"):
        download(url, trusted_hosts=())


def test_octal_ip_is_refused():
    # httpx rejects octal dotted quads outright; whatever the reason, it must be refused.
    with pytest.raises(DownloadRefused):
        download("http://0177.0.0.1/a.png", trusted_hosts=())


def test_every_resolved_address_must_be_public():
    with pytest.raises(DownloadRefused, match=r"192\.168\.0\.10"):
        check_url("http://mixed.example/a.png", trusted_hosts=())


def test_public_addresses_pass_the_check():
    assert check_url("http://example.com/a.png", trusted_hosts=()) == ["93.184.216.34"]
    assert check_url("https://v6public.example/a.png", trusted_hosts=()) == ["2606:4700:4700::1111"]
    assert check_url("http://8.8.8.8/a.png", trusted_hosts=()) == ["8.8.8.8"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://example.com:70/_GET",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "//example.com/a.png",
        "example.com/a.png",
    ],
)
def test_non_http_schemes_are_refused(url):
    with pytest.raises(DownloadRefused, match="only http and https"):
        download(url, trusted_hosts=())


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com@127.0.0.1/a.png",
        "http://user:pass@example.com/a.png",
        "http://example.com:80@169.254.169.254/",
    ],
)
def test_userinfo_is_refused(url):
    with pytest.raises(DownloadRefused, match="user name or password"):
        download(url, trusted_hosts=())


def test_userinfo_trick_targets_the_real_host():
    # Without userinfo the host after "@" is what would be contacted — and it is refused.
    with pytest.raises(DownloadRefused, match=r"127\.0\.0\.1"):
        check_url("http://127.0.0.1/a.png", trusted_hosts=())


def test_unknown_host_is_refused_plainly():
    with pytest.raises(DownloadRefused, match="could not be found"):
        download("http://no-such-host.example/a.png", trusted_hosts=())


def test_invalid_url_is_refused():
    with pytest.raises(DownloadRefused):
        download("http://exa mple.com:99999/a.png", trusted_hosts=())


def test_trusted_host_and_port_is_allowed_other_port_is_not():
    trusted = ["127.0.0.1:8123"]
    assert check_url("http://127.0.0.1:8123/files/a.png", trusted_hosts=trusted) == ["127.0.0.1"]
    with pytest.raises(DownloadRefused, match="private or local network"):
        check_url("http://127.0.0.1:8124/files/a.png", trusted_hosts=trusted)
    with pytest.raises(DownloadRefused, match="private or local network"):
        check_url("http://127.0.0.1/files/a.png", trusted_hosts=trusted)
    # Trust is by the URL's host spelling, not by address.
    with pytest.raises(DownloadRefused, match="private or local network"):
        check_url("http://2130706433:8123/files/a.png", trusted_hosts=trusted)


def test_trusted_hosts_accept_urls_and_ipv6():
    assert check_url("https://[::1]:9443/x.png", trusted_hosts=["https://[::1]:9443/relay"]) == [
        "::1"
    ]
    assert check_url("http://localhost/x.png", trusted_hosts=["http://localhost"])
    with pytest.raises(DownloadRefused):
        check_url("https://localhost/x.png", trusted_hosts=["http://localhost"])


def test_trusted_hosts_default_to_the_approved_relays(settings):
    settings.UPSTREAM_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765", "https://relay.example/api"]
    assert check_url("http://127.0.0.1:8765/files/a.png") == ["127.0.0.1"]
    with pytest.raises(DownloadRefused):
        check_url("http://127.0.0.1:8766/files/a.png")
    settings.UPSTREAM_ALLOWED_BASE_URLS = []
    with pytest.raises(DownloadRefused):
        check_url("http://127.0.0.1:8765/files/a.png")
