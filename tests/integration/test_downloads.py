"""media_jobs.downloads over real HTTP: a tiny file server in a thread, and the relay simulator."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from media_jobs import downloads
from media_jobs.downloads import MAX_REDIRECTS, DownloadRefused, check_url, download
from studio.accounts.models import RelayCredential

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@dataclass
class FileServer:
    server: http.server.ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def make_handler(state: dict) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output quiet
            pass

        def send(self, status, body=b"", content_type="image/png", extra=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def redirect(self, location, status=302):
            self.send(status, b"", "text/plain", [("Location", location)])

        def do_GET(self):
            fs: FileServer = state["server"]
            fs.hits.append(self.path)
            fs.headers.append({k.lower(): v for k, v in self.headers.items()})
            path = self.path.split("?", 1)[0]
            if path == "/ok.png":
                self.send(200, PNG, "Image/PNG; name=ok.png")
            elif path == "/audio.mp3":
                self.send(200, b"ID3fakeaudio", "audio/mpeg")
            elif path == "/big-declared.png":
                self.send(200, b"x" * 5000)
            elif path == "/big-undeclared.png":
                # No Content-Length: the body ends when the connection closes.
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(50):
                    self.wfile.write(b"y" * 1000)
                self.close_connection = True
            elif path == "/lying-length.png":
                # Claims 10 bytes, the cap is checked on what actually arrives too.
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(20):
                    self.wfile.write(b"3e8\r\n" + b"z" * 1000 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/page.html":
                self.send(200, b"<html>Access denied</html>", "text/html; charset=utf-8")
            elif path == "/error.json":
                self.send(200, b'{"error": "expired"}', "application/json")
            elif path == "/no-type":
                self.send_response(200)
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"abc")
            elif path == "/gone.png":
                self.send(404, b"not found", "text/plain")
            elif path == "/expired.png":
                self.send(403, b"<Error>Request has expired</Error>", "application/xml")
            elif path == "/broken.png":
                self.send(502, b"bad gateway", "text/plain")
            elif path == "/redirect":
                # /redirect?to=<url>: a hostile file server sending us wherever it likes.
                self.redirect(parse_qs(urlsplit(self.path).query)["to"][0])
            elif path == "/to-metadata":
                self.redirect("http://169.254.169.254/latest/meta-data/")
            elif path == "/to-other-port":
                self.redirect(f"http://127.0.0.1:{state['other_port']}/ok.png")
            elif path == "/to-file":
                self.redirect("file:///etc/passwd")
            elif path == "/to-ok":
                self.redirect("/ok.png", 307)
            elif path == "/loop":
                self.redirect("/loop", 301)
            elif path.startswith("/chain/"):
                remaining = int(path.rsplit("/", 1)[1])
                self.redirect(f"/chain/{remaining - 1}" if remaining else "/ok.png")
            elif path == "/slow.png":
                time.sleep(3)
                self.send(200, PNG)
            elif path == "/drip.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    time.sleep(0.05)
                    self.wfile.write(b"d")
                    self.wfile.flush()
            else:
                self.send(404, b"no route", "text/plain")

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the client hanging up on purpose (size cap, timeout) is expected here


def start_server(other_port: int = 0) -> FileServer:
    state: dict = {"other_port": other_port}
    server = QuietServer(("127.0.0.1", 0), make_handler(state))
    fs = FileServer(server)
    state["server"] = fs
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return fs


def stop_server(fs: FileServer) -> None:
    fs.server.shutdown()
    fs.server.server_close()


@pytest.fixture
def other() -> Iterator[FileServer]:
    """A second local server that is NOT trusted."""
    fs = start_server()
    yield fs
    stop_server(fs)


@pytest.fixture
def files(other: FileServer) -> Iterator[FileServer]:
    fs = start_server(other_port=other.port)
    yield fs
    stop_server(fs)


def fetch(fs: FileServer, path: str, **kwargs):
    kwargs.setdefault("trusted_hosts", [fs.host])
    return download(f"{fs.url}{path}", **kwargs)


# ---------------------------------------------------------------- success


def test_success_returns_content_mime_and_sha256(files):
    result = fetch(files, "/ok.png")
    assert result.content == PNG
    assert result.mime == "image/png"
    assert result.sha256 == hashlib.sha256(PNG).hexdigest()
    assert result.final_url == f"{files.url}/ok.png"


def test_no_cookies_or_credentials_are_sent(files):
    fetch(files, "/ok.png")
    sent = files.headers[-1]
    assert "authorization" not in sent and "cookie" not in sent
    assert sent["host"] == files.host


def test_allowed_mime_prefixes(files):
    assert fetch(files, "/audio.mp3").mime == "audio/mpeg"
    with pytest.raises(DownloadRefused, match="audio/mpeg instead of a media file"):
        fetch(files, "/audio.mp3", allowed_mime_prefixes=("image/",))


def test_same_host_without_trust_is_refused_before_connecting(files):
    with pytest.raises(DownloadRefused, match="private or local network"):
        fetch(files, "/ok.png", trusted_hosts=())
    with pytest.raises(DownloadRefused, match="private or local network"):
        fetch(files, "/ok.png", trusted_hosts=[f"127.0.0.1:{files.port + 1}"])
    assert files.hits == []


def test_connection_goes_to_the_vetted_address_with_the_original_host(files, monkeypatch):
    """DNS pinning: the name is resolved once, by the guard, and the request keeps its Host."""
    calls = []
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        calls.append(host)
        if host == "files.relay.test":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(downloads.socket, "getaddrinfo", resolver)
    name = f"files.relay.test:{files.port}"
    result = download(f"http://{name}/ok.png", trusted_hosts=[name])
    assert result.sha256 == hashlib.sha256(PNG).hexdigest()
    assert result.final_url == f"http://{name}/ok.png"
    assert files.headers[-1]["host"] == name
    # Nobody resolved the name a second time: the connection only "resolved" the pinned IP.
    assert calls.count("files.relay.test") == 1
    assert set(calls) <= {"files.relay.test", "127.0.0.1"}

    with pytest.raises(DownloadRefused, match="private or local network"):
        download(f"http://{name}/ok.png", trusted_hosts=())
    assert len(files.hits) == 1


# ---------------------------------------------------------------- size and type


def test_declared_size_above_the_cap_is_refused(files):
    with pytest.raises(DownloadRefused, match="larger than"):
        fetch(files, "/big-declared.png", max_bytes=4000)
    assert fetch(files, "/big-declared.png", max_bytes=5000).content == b"x" * 5000


@pytest.mark.parametrize("path", ["/big-undeclared.png", "/lying-length.png"])
def test_streamed_size_above_the_cap_is_refused(files, path):
    with pytest.raises(DownloadRefused, match="larger than"):
        fetch(files, path, max_bytes=10_000)


@pytest.mark.parametrize(
    ("path", "mime"), [("/page.html", "text/html"), ("/error.json", "application/json")]
)
def test_wrong_content_type_is_refused(files, path, mime):
    with pytest.raises(DownloadRefused, match=f"sent {mime} instead of a media file"):
        fetch(files, path)


def test_missing_content_type_is_refused(files):
    with pytest.raises(DownloadRefused, match="did not say what kind of file"):
        fetch(files, "/no-type")


# ---------------------------------------------------------------- redirects


def test_relative_redirect_is_followed(files):
    result = fetch(files, "/to-ok")
    assert result.content == PNG
    assert result.final_url == f"{files.url}/ok.png"


def test_redirect_to_metadata_address_is_refused(files):
    with pytest.raises(DownloadRefused, match=r"169\.254\.169\.254"):
        fetch(files, "/to-metadata", timeout=5)


def test_redirect_to_untrusted_local_port_is_refused(files, other):
    with pytest.raises(DownloadRefused, match="private or local network"):
        fetch(files, "/to-other-port")
    assert other.hits == []


def test_redirect_to_other_scheme_is_refused(files):
    with pytest.raises(DownloadRefused, match="only http and https"):
        fetch(files, "/to-file")


def test_redirect_loop_is_capped(files):
    with pytest.raises(DownloadRefused, match=f"redirected more than {MAX_REDIRECTS} times"):
        fetch(files, "/loop")
    assert len(files.hits) == MAX_REDIRECTS + 1


def test_redirect_chain_up_to_the_limit_is_followed(files):
    assert fetch(files, f"/chain/{MAX_REDIRECTS - 1}").content == PNG
    with pytest.raises(DownloadRefused, match="redirected more than"):
        fetch(files, f"/chain/{MAX_REDIRECTS}")


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(("path", "status"), [("/gone.png", 404), ("/expired.png", 403)])
def test_expired_or_missing_file_has_a_clear_message(files, path, status):
    with pytest.raises(DownloadRefused) as refused:
        fetch(files, path)
    assert str(refused.value) == f"the file is no longer available (HTTP {status})"


def test_server_error_is_reported(files):
    with pytest.raises(DownloadRefused, match=r"HTTP 502"):
        fetch(files, "/broken.png")


def test_slow_server_times_out(files):
    started = time.monotonic()
    with pytest.raises(DownloadRefused, match="did not answer in time"):
        fetch(files, "/slow.png", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_timeout_bounds_the_whole_download(files):
    """A server that drips a byte every 50 ms never trips a read timeout, but the deadline."""
    started = time.monotonic()
    with pytest.raises(DownloadRefused, match="did not answer in time"):
        fetch(files, "/drip.png", timeout=1.0)
    assert time.monotonic() - started < 2.5


def test_refused_connection_has_a_plain_message():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(DownloadRefused, match="could not connect to the file server"):
            download(f"http://127.0.0.1:{port}/a.png", trusted_hosts=[f"127.0.0.1:{port}"])


# ---------------------------------------------------------------- the relay simulator


def generate(simulator, prompt: str) -> str:
    response = httpx.post(
        f"{simulator.url}/v1/images/generations",
        json={"model": "dall-e-3", "prompt": prompt},
        headers=simulator.headers(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"][0]["url"]


def test_simulator_result_downloads_with_the_relay_trusted_by_settings(simulator, settings):
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    url = generate(simulator, "a lighthouse")
    assert url.startswith(f"{simulator.url}/files/")
    result = download(url)
    assert result.mime == "image/png"
    assert result.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert result.sha256 == hashlib.sha256(httpx.get(url).content).hexdigest()
    assert result.final_url == url


def test_simulator_result_is_refused_when_the_relay_is_not_approved(simulator, settings):
    settings.UPSTREAM_ALLOWED_BASE_URLS = []
    url = generate(simulator, "a lighthouse")
    with pytest.raises(DownloadRefused, match="private or local network"):
        download(url)


def test_simulator_expired_result_has_a_clear_message(simulator):
    url = generate(simulator, "gone soon [[expire]]")
    with pytest.raises(DownloadRefused) as refused:
        download(url, trusted_hosts=[simulator.url])
    assert str(refused.value) == "the file is no longer available (HTTP 403)"


def test_simulator_unknown_file_has_a_clear_message(simulator):
    with pytest.raises(DownloadRefused, match=r"no longer available \(HTTP 404\)"):
        download(f"{simulator.url}/files/does-not-exist.png", trusted_hosts=[simulator.url])


# ---------------------------------------------------------------- SSRF: every spelling of "inside"

PRIVATE_ADDRESSES = [
    # IPv6: loopback, unspecified, link-local fe80::/10 (both ends), unique local fc00::/7,
    # the deprecated site-local fec0::/10, multicast, AWS's IPv6 metadata address.
    "http://[::1]/a.png",
    "http://[::]/a.png",
    "http://[0:0:0:0:0:0:0:1]/a.png",
    "http://[fe80::1]/a.png",
    "http://[febf:ffff::1]/a.png",
    "http://[fc00::1]/a.png",
    "http://[fd12:3456:789a::1]/a.png",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fec0::1]/a.png",
    "http://[ff02::1]/a.png",
    # IPv4 inside IPv6: mapped (both spellings), compatible, NAT64, 6to4, Teredo.
    "http://[::ffff:127.0.0.1]/a.png",
    "http://[::ffff:7f00:1]/a.png",
    "http://[::ffff:169.254.169.254]/a.png",
    "http://[::ffff:10.0.0.1]/a.png",
    "http://[::127.0.0.1]/a.png",
    "http://[64:ff9b::7f00:1]/a.png",
    "http://[2002:7f00:1::]/a.png",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.png",
    # IPv4 spelled every way a resolver accepts: decimal, octal, hex, short forms.
    "http://0.0.0.0/a.png",
    "http://0/a.png",
    "http://2130706433/a.png",
    "http://017700000001/a.png",
    "http://0177.0.0.1/a.png",
    "http://0x7f.0.0.1/a.png",
    "http://0x7f000001/a.png",
    "http://127.1/a.png",
    "http://127.0.0.1./a.png",
    "http://localhost/a.png",
    "http://LOCALHOST./a.png",
    # The usual private, shared, link-local and special ranges.
    "http://10.0.0.1/a.png",
    "http://172.16.0.1/a.png",
    "http://192.168.1.1/a.png",
    "http://100.64.0.1/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.0.0.170/a.png",
    "http://198.18.0.1/a.png",
    "http://224.0.0.1/a.png",
    "http://255.255.255.255/a.png",
    # Parser confusion: credentials, fragments, encoded or odd characters.
    "http://files.example.com@127.0.0.1/a.png",
    "http://[::1]:80@files.example.com/a.png",
    "http://127.0.0.1#@files.example.com/a.png",
    "http://%31%32%37.0.0.1/a.png",
    "http://\u2460\u2461\u2466.0.0.1/a.png",
    "http://[fe80::1%25eth0]/a.png",
]


@pytest.mark.parametrize("url", PRIVATE_ADDRESSES)
def test_private_loopback_and_link_local_addresses_are_refused(url):
    with pytest.raises(DownloadRefused):
        check_url(url, trusted_hosts=())
    with pytest.raises(DownloadRefused):
        download(url, trusted_hosts=(), timeout=2)


@pytest.mark.parametrize("url", ["https://1.1.1.1/a.png", "https://[2606:4700::1111]/a.png"])
def test_public_addresses_pass_the_check(url):
    """The guard is not simply refusing everything: public addresses pass (no connection)."""
    assert check_url(url, trusted_hosts=()) == [urlsplit(url).hostname]


@pytest.fixture
def fake_dns(monkeypatch):
    """Names under .relay.test resolve to what the test says (a hostile DNS answer)."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (address, port, 0, 0) if ":" in address else (address, port),
                )
                for address in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(downloads.socket, "getaddrinfo", resolver)
    return answers


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::1"],
        ["fd00::5"],
        ["::ffff:192.168.0.1"],
        ["93.184.216.34", "127.0.0.1"],  # one public answer does not excuse a private one
        ["2606:4700::1111", "fe80::1"],
    ],
)
def test_names_resolving_to_private_addresses_are_refused(fake_dns, files, addresses):
    fake_dns["cdn.relay.test"] = addresses
    with pytest.raises(DownloadRefused, match="private or local network"):
        download(f"http://cdn.relay.test:{files.port}/ok.png", trusted_hosts=(), timeout=2)
    assert files.hits == []


@pytest.mark.parametrize(
    "target",
    [
        "http://[::1]:{port}/ok.png",
        "http://[::ffff:127.0.0.1]:{port}/ok.png",
        "http://2130706433:{port}/ok.png",
        "http://0177.0.0.1:{port}/ok.png",
        "http://0x7f.1:{port}/ok.png",
        "http://localhost:{port}/ok.png",
        "http://0.0.0.0:{port}/ok.png",
        "http://[fe80::1]/ok.png",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://internal.relay.test:{port}/ok.png",
        "http://169.254.169.254/latest/meta-data/iam/",
        "ftp://127.0.0.1/ok.png",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_redirects_into_the_private_network_are_refused(fake_dns, files, other, target):
    """The trusted server (the relay) redirects: every hop is vetted again; the same host by
    another name or spelling, or another local server, is not trusted."""
    fake_dns["internal.relay.test"] = ["127.0.0.1"]
    location = target.format(port=other.port)
    with pytest.raises(DownloadRefused):
        fetch(files, f"/redirect?to={quote(location, safe='')}", timeout=3)
    assert files.hits == [f"/redirect?to={quote(location, safe='')}"]
    assert other.hits == []


# ---------------------------------------------------------------- the relay base URL


OUTSIDE_RELAYS = [
    "http://169.254.169.254",
    "http://127.0.0.1:6379",
    "http://[::1]:5432",
    "https://evil.example",
    "file:///etc/passwd",
    "",
]


@pytest.fixture
def approved_relay(settings, simulator):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    return simulator.url


def near_misses(relay: str) -> list[str]:
    """Addresses that look like the approved relay but are not it."""
    host = urlsplit(relay).netloc
    return [
        f"{relay}.evil.example",
        f"{relay}@evil.example",
        f"http://evil.example/{host}",
        f"http://evil.example#{host}",
        relay.replace("http://", "https://"),
        f"{relay}/v1/../../redirect",
    ]


@pytest.mark.django_db
def test_the_settings_form_refuses_a_relay_outside_the_allowlist(client, user, approved_relay):
    client.force_login(user)
    for base_url in [*OUTSIDE_RELAYS, *near_misses(approved_relay)]:
        response = client.post("/settings/", {"base_url": base_url, "api_key": "sk-sim-test-1"})
        assert response.status_code == 400, base_url
        assert not RelayCredential.objects.exists(), base_url
    response = client.post("/settings/", {"base_url": approved_relay, "api_key": "sk-sim-test-1"})
    assert response.status_code == 302
    assert RelayCredential.objects.get(user=user).base_url == approved_relay


@pytest.mark.django_db
def test_saving_a_key_for_a_relay_outside_the_allowlist_is_refused(user, approved_relay):
    from django.core.exceptions import ValidationError

    from studio.accounts import services

    for base_url in [*OUTSIDE_RELAYS, *near_misses(approved_relay)]:
        with pytest.raises(ValidationError):
            services.save_credential(user, base_url=base_url, api_key="sk-sim-test-1")
    assert not RelayCredential.objects.exists()


@pytest.mark.django_db
def test_a_key_saved_for_a_relay_no_longer_approved_is_not_sent_there(
    client, user, settings, approved_relay, files
):
    """A relay taken off the allowlist (or a base URL set behind the form's back, e.g. in the
    admin) gets no request with the user's key: not to verify it, not to list models."""
    from studio.accounts import services

    settings.UPSTREAM_ALLOWED_BASE_URLS = [approved_relay, files.url]
    client.force_login(user)
    saved = client.post("/settings/", {"base_url": files.url, "api_key": "sk-sim-trap-1"})
    assert saved.status_code == 302
    credential = RelayCredential.objects.get(user=user)
    assert credential.base_url == files.url

    settings.UPSTREAM_ALLOWED_BASE_URLS = [approved_relay]  # an admin withdrew it
    with pytest.raises(services.MissingCredential):
        services.relay_credentials_for(user)
    assert services.missing_key_message(user)
    verify = client.post("/settings/verify/", follow=True)
    assert verify.status_code == 200
    models = client.get("/chat/models.json").json()
    assert models["models"] == [] and models["error"]
    assert files.hits == []  # nothing, and so no key, went to the withdrawn relay
    credential.refresh_from_db()
    assert credential.verified_at is None
