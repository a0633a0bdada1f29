"""The UI guard of `up` (issue 9 part 6): a real proxy on loopback in front of a stub webserver.

The stub answers every request with its method, path, Host and body length (keep-alive), and
turns an ``Upgrade: websocket`` request into an echo tunnel after ``101``.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trading_brain.adapters.service.guard import Guard
from trading_brain.adapters.service.guard_rules import COOKIE, host_allowed, policy_for, verdict

pytestmark = pytest.mark.timeout(60)
TOKEN = "s3cret-token-0123456789"


class Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        Stub.seen.append(f"{self.command} {self.path}")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while data := self.connection.recv(4096):
                self.connection.sendall(b"echo:" + data)
            self.close_connection = True
            return
        body = f"{self.command} {self.path} host={self.headers['Host']} " \
               f"len={len(self._body())}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer


def _serve_guard(token: str | None) -> tuple[Guard, int, ThreadingHTTPServer]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    guard = Guard(sock, ("127.0.0.1", upstream.server_address[1]), policy_for("127.0.0.1", port,
                                                                            token))
    guard.start()
    return guard, port, upstream


@pytest.fixture(scope="module")
def guarded() -> Iterator[int]:
    guard, port, upstream = _serve_guard(None)
    yield port
    guard.stop()
    upstream.shutdown()


def request(port: int, method: str, path: str, host: str | None = None,
            headers: dict[str, str] | None = None, body: bytes | None = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, str, dict[str, str]]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    return r.status, r.read().decode(), dict(r.getheaders())


def test_a_good_host_passes_and_keep_alive_checks_every_request(guarded):
    conn = http.client.HTTPConnection("127.0.0.1", guarded, timeout=10)
    status, body, _ = request(guarded, "GET", "/server_info", conn=conn)
    assert (status, body) == (200, f"GET /server_info host=127.0.0.1:{guarded} len=0")
    status, body, _ = request(guarded, "POST", "/graphql", host=f"localhost:{guarded}",
                              body=b'{"query": "{ version }"}', conn=conn)  # same connection
    assert (status, body) == (200, f"POST /graphql host=localhost:{guarded} len=24")
    status, body, _ = request(guarded, "GET", "/server_info", host=f"evil.example:{guarded}",
                              conn=conn)  # a rebinding Host later on a kept-alive connection
    assert status == 403 and body == f"forbidden: Host 'evil.example:{guarded}' is not this " \
                                     "Trading Brain UI\n"


@pytest.mark.parametrize("host", ["evil.example:3000", "evil.example:{port}", "{port}",
                                  "127.0.0.1:1", "localhost", "127.0.0.1.evil.example:{port}"])
def test_a_rebinding_host_is_refused_before_the_webserver(guarded, host):
    before = len(Stub.seen)
    status, body, headers = request(guarded, "POST", "/graphql", host=host.format(port=guarded),
                                    body=b"{}")
    assert status == 403 and body.startswith("forbidden: Host") and body.count("\n") == 1
    assert headers["Connection"] == "close" and len(Stub.seen) == before


def test_hostile_origins_and_cross_site_requests_are_refused(guarded):
    evil = {"Origin": "http://evil.example", "Content-Type": "application/json"}
    assert request(guarded, "POST", "/graphql", headers=evil, body=b"{}")[0] == 403
    assert request(guarded, "POST", "/graphql", headers={"Origin": "null"}, body=b"{}")[0] == 403
    ours = {"Origin": f"http://127.0.0.1:{guarded}"}
    assert request(guarded, "POST", "/graphql", headers=ours, body=b"{}")[0] == 200
    img = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    assert request(guarded, "GET", "/runs", headers=img)[0] == 403
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document"}
    assert request(guarded, "GET", "/runs", headers=link)[0] == 200


def test_graphql_over_get_is_refused_unless_it_only_renders_graphiql(guarded):
    path = "/graphql?query=mutation%7BlaunchRun%7D"
    status, body, _ = request(guarded, "GET", path)
    assert status == 403 and "GraphQL over GET" in body
    assert request(guarded, "GET", path, headers={"Accept": "text/html"})[0] == 200


def test_chunked_bodies_pass_and_ambiguous_framing_is_refused(guarded):
    conn = http.client.HTTPConnection("127.0.0.1", guarded, timeout=10)
    conn.request("POST", "/graphql", body=iter([b"abc", b"defgh"]),
                 headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, f"POST /graphql host=127.0.0.1:{guarded} len=8".encode())
    status, body, _ = request(guarded, "POST", "/graphql", body=b"{}",
                              headers={"Transfer-Encoding": "chunked"})
    assert status == 400 and "Transfer-Encoding" in body


def _upgrade(port: int, origin: str) -> tuple[bytes, socket.socket]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nOrigin: {origin}\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, s


def test_a_websocket_upgrade_is_tunnelled(guarded):
    head, s = _upgrade(guarded, f"http://localhost:{guarded}")
    with s:
        assert head.startswith(b"HTTP/1.1 101")
        s.sendall(b"\x81\x05hello")
        assert s.recv(4096) == b"echo:\x81\x05hello"
    head, s = _upgrade(guarded, "http://evil.example")
    with s:
        assert head.startswith(b"HTTP/1.1 403") and b"cross-origin" in head


def test_the_token_is_asked_once_then_kept_in_a_cookie():
    guard, port, upstream = _serve_guard(TOKEN)
    try:
        status, body, _ = request(port, "GET", "/runs")
        assert status == 401 and "?token=" in body
        assert request(port, "GET", "/runs?token=wrong-token-0123456789")[0] == 401
        status, _, headers = request(port, "GET", f"/runs?a=1&token={TOKEN}")
        assert status == 303 and headers["Location"] == "/runs?a=1"
        assert headers["Set-Cookie"].startswith(f"{COOKIE}={TOKEN};")
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        cookie = {"Cookie": f"other=1; {COOKIE}={TOKEN}"}
        assert request(port, "GET", "/runs?a=1", headers=cookie)[0] == 200
        assert request(port, "GET", "/runs", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert request(port, "GET", "/runs", host=f"evil.example:{port}", headers=cookie)[0] == 403
    finally:
        guard.stop()
        upstream.shutdown()


def test_an_unreachable_webserver_is_a_502():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    guard = Guard(sock, ("127.0.0.1", dead), policy_for("127.0.0.1", port))
    guard.start()
    try:
        status, body, _ = request(port, "GET", "/server_info")
        assert status == 502 and "starting" in body
    finally:
        guard.stop()


@pytest.mark.parametrize(("bound", "authority", "ok"), [
    ("127.0.0.1", "127.0.0.1:3000", True), ("127.0.0.1", "LOCALHOST:3000", True),
    ("127.0.0.1", "[::1]:3000", True), ("127.0.0.1", "10.0.0.5:3000", False),
    ("127.0.0.1", "127.0.0.1:3001", False), ("127.0.0.1", "127.0.0.1:x", False),
    ("0.0.0.0", "10.0.0.5:3000", True), ("0.0.0.0", "[fe80::1]:3000", True),
    ("0.0.0.0", "rebind.example:3000", False), ("::", "[::1]:3000", True),
    ("box.lan", "box.lan:3000", True), ("box.lan", "evil.box.lan:3000", False),
])
def test_host_rules(bound, authority, ok):
    assert host_allowed(policy_for(bound, 3000), authority) is ok


def test_an_allowed_proxy_name_passes_host_and_origin_on_any_port():
    policy = policy_for("127.0.0.1", 3000, extra=("TB.example.com",))
    head = [("Host", "tb.example.com"), ("Origin", "https://tb.example.com")]
    assert verdict(policy, "POST", "/graphql", head).status == 0
    assert verdict(policy, "POST", "/graphql", [("Host", "evil.tb.example.com")]).status == 403
    assert verdict(policy, "POST", "/graphql", [head[0], ("Origin", "https://evil.example")]
                   ).status == 403


def test_origin_form_targets_only():
    policy = policy_for("127.0.0.1", 3000)
    assert verdict(policy, "GET", "http://evil.example/x", [("Host", "127.0.0.1:3000")]).status \
        == 403
    assert verdict(policy, "GET", "/x", [("Host", "127.0.0.1:3000"),
                                         ("Host", "evil.example")]).status == 403
