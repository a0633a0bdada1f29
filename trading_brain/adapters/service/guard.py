"""The UI guard of ``trading-brain up``: a small reverse proxy in front of the Dagster webserver.

Contract:
- ``Guard(sock, upstream, policy)`` serves the already-bound listening ``sock`` (the user-facing
  ``--host/--port``) on an asyncio loop in a daemon thread (``start``/``stop``); every request is
  passed to ``upstream`` (the webserver on an internal loopback port) only if
  ``guard_rules.verdict`` passes it, else it is answered with its status and a one-line body;
- HTTP/1.1 keep-alive: each request head on a connection is checked, its body (``Content-Length``
  or chunked) forwarded as is; answers are relayed byte for byte on one upstream connection per
  client connection (browsers do not pipeline, so answers never interleave with refusals);
- a request with ``Upgrade`` (the UI's GraphQL WebSocket) that passes turns the connection into
  a raw tunnel: a browser never reuses a handshake connection, so nothing on it needs checking;
- malformed or ambiguous framing (both ``Content-Length`` and ``Transfer-Encoding``, repeated
  lengths, an unknown coding, a head over 64 KiB) is refused with 400/431 and the connection closed;
- an unreachable upstream answers 502 "starting".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from trading_brain.adapters.service.guard_rules import Policy, Verdict, verdict

HEAD_LIMIT = 64 * 1024
_REASONS = {303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            431: "Request Header Fields Too Large", 502: "Bad Gateway"}


class BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def answer(v: Verdict) -> bytes:
    """The bytes of the guard's own answer (always ``Connection: close``)."""
    body = (v.text + "\n").encode() if v.text else b""
    lines = [f"HTTP/1.1 {v.status} {_REASONS.get(v.status, 'Error')}",
             "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}",
             "Cache-Control: no-store"]
    if v.location:
        lines.append(f"Location: {v.location}")
    if v.cookie:
        lines.append(f"Set-Cookie: {v.cookie}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """``(method, target, headers)`` of one request head (ending with CRLF CRLF)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as e:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "bad request: undecodable head") from e
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "bad request: malformed request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise BadRequest(400, "bad request: malformed header line")
        headers.append((name, value.strip()))
    return parts[0], parts[1], headers


def body_framing(headers: list[tuple[str, str]]) -> int | None:
    """Bytes of body to forward, or ``None`` for chunked; refuses ambiguous framing."""
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
    if codings:
        if lengths or len(codings) != 1 or codings[0].strip().lower() != "chunked":
            raise BadRequest(400, "bad request: unsupported or ambiguous Transfer-Encoding")
        return None
    if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
        raise BadRequest(400, "bad request: bad Content-Length")
    return int(lengths[0]) if lengths else 0


async def _copy_exact(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        chunk = await reader.read(min(n, 65536))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(chunk)
        await writer.drain()
        n -= len(chunk)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as e:
            raise BadRequest(400, "bad request: bad chunk size") from e
        writer.write(line)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                writer.write(trailer)
            writer.write(b"\r\n")
            await writer.drain()
            return
        await _copy_exact(reader, writer, size + 2)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


class Guard:
    """The proxy; see the module docstring."""

    def __init__(self, sock: socket.socket, upstream: tuple[str, int], policy: Policy) -> None:
        self.sock, self.upstream, self.policy = sock, upstream, policy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ui-guard", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, sock=self.sock, limit=HEAD_LIMIT))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(reader, writer)
        try:
            while await self._one_request(conn):
                pass
        except BadRequest as e:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(answer(Verdict(e.status, str(e))))
                await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            await conn.close()

    async def _one_request(self, conn: _Connection) -> bool:
        """Check and forward one request; False when the connection is done."""
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            raise BadRequest(431, "request head too large") from None
        method, target, headers = parse_head(head)
        decided = verdict(self.policy, method, target, headers)
        if decided.status:
            conn.writer.write(answer(decided))
            await conn.writer.drain()
            return False
        length = body_framing(headers)
        up_w = await conn.upstream(self.upstream)
        if up_w is None:
            conn.writer.write(answer(Verdict(502, "Dagster webserver is not answering yet "
                                                  "(starting?): retry shortly")))
            await conn.writer.drain()
            return False
        up_w.write(head)
        if length is None:
            await _copy_chunked(conn.reader, up_w)
        else:
            await _copy_exact(conn.reader, up_w, length)
        await up_w.drain()
        if any(n.lower() == "upgrade" for n, _ in headers):
            await _pipe(conn.reader, up_w)
            return False
        return True


class _Connection:
    """One client connection and its (lazily opened) upstream connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.up_w: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None

    async def upstream(self, address: tuple[str, int]) -> asyncio.StreamWriter | None:
        if self.up_w is None:
            try:
                up_r, self.up_w = await asyncio.open_connection(*address)
            except OSError:
                return None
            self.pump = asyncio.ensure_future(_pipe(up_r, self.writer))
        return self.up_w

    async def close(self) -> None:
        if self.up_w is not None and self.pump is not None and not self.pump.done():
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.up_w.write_eof()  # a half-closed client still gets its answer
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await asyncio.wait_for(self.pump, 30)
        for w in (self.up_w, self.writer):
            if w is not None:
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    w.close()
