"""A local fake of the Telegram Bot API (and a webhook receiver) on 127.0.0.1.

Contract:
- ``with FakeTelegram(token="T") as tg:`` serves ``tg.api_url`` (``/bot<token>/<method>``); a
  wrong token answers 401 like the real API. Methods: ``getUpdates`` (``offset`` acknowledges
  older updates, ``timeout`` long-polls: the answer waits until an update arrives or the timeout
  passes), ``sendMessage`` (text <= 4096 chars, else 400), ``sendPhoto`` (multipart, the PNG
  kept in ``tg.photos``), ``getMe``.
- ``tg.push(text, user_id=…, chat_id=…)`` queues a user's message; ``tg.sent`` lists
  (chat_id, text) of every message sent; ``tg.wait_sent(n)`` waits until n are there.
- Faults, consumed in order per method (or ``"*"``): ``tg.add_fault("sendMessage", status=500)``,
  ``body=b"garbage"`` (not JSON), ``delay_s=2.0`` (slow), ``status=429, retry_after=3``;
  ``times`` = how many requests it hits.
- ``WebhookReceiver(mode)``: a JSON POST receiver; mode ``ok`` (204), ``error`` (500), ``slow``
  (answers after ``delay_s``), ``garbage`` (closes with bytes that are not HTTP).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

POLL_S = 0.05  # serve_forever's poll: shutdown() waits for it (the default 0.5 s, per test)


@dataclass
class Fault:
    status: int = 500
    body: bytes | None = None
    delay_s: float = 0.0
    retry_after: int | None = None
    times: int | None = 1


@dataclass
class TelegramState:
    token: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1000
    sent: list[tuple[int, str]] = field(default_factory=list)
    photos: list[tuple[int, bytes, str]] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    requests: list[tuple[str, float]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def fault_for(self, method: str) -> Fault | None:
        with self.cond:
            for name in (method, "*"):
                queue = self.faults.get(name) or []
                if queue:
                    f = queue[0]
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            queue.pop(0)
                    return f
        return None


class FakeTelegram:
    def __init__(self, token: str = "123:TEST") -> None:
        self.state = TelegramState(token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": POLL_S})

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def sent(self) -> list[tuple[int, str]]:
        return self.state.sent

    @property
    def photos(self) -> list[tuple[int, bytes, str]]:
        return self.state.photos

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.state.cond:
            self.state.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def push(self, text: str, user_id: int = 42, chat_id: int | None = None,
             date: float | None = None) -> int:
        with self.state.cond:
            uid = self.state.next_update_id
            self.state.next_update_id += 1
            self.state.updates.append({"update_id": uid, "message": {
                "message_id": uid, "date": int(date if date is not None else time.time()),
                "from": {"id": user_id, "is_bot": False, "first_name": "u"},
                "chat": {"id": chat_id if chat_id is not None else user_id, "type": "private"},
                "text": text}})
            self.state.cond.notify_all()
        return uid

    def add_fault(self, method: str, **kw: Any) -> None:
        with self.state.cond:
            self.state.faults.setdefault(method, []).append(Fault(**kw))

    def clear_faults(self) -> None:
        with self.state.cond:
            self.state.faults.clear()

    def wait_sent(self, n: int, timeout_s: float = 10.0) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout_s
        with self.state.cond:
            while len(self.state.sent) < n and time.monotonic() < deadline:
                self.state.cond.wait(0.05)
            return list(self.state.sent)


def _handler(state: TelegramState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            files = _parse_body(self.headers.get("Content-Type", ""), raw, params)
            prefix, _, method = url.path.rpartition("/")
            state.requests.append((method, time.monotonic()))
            if prefix != f"/bot{state.token}":
                return self._send(401, {"ok": False, "error_code": 401,
                                        "description": "Unauthorized"})
            fault = state.fault_for(method)
            if fault is not None:
                time.sleep(fault.delay_s)
                if fault.body is not None:
                    return self._raw(fault.status, fault.body)
                if fault.status != 200:
                    return self._send(fault.status, _fault_body(fault))
            handler = METHODS.get(method, _not_found)
            code, result = handler(state, params, files)
            if code != 200:
                return self._send(code, {"ok": False, "error_code": code, "description": result})
            self._send(200, {"ok": True, "result": result})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            self._raw(code, json.dumps(body).encode())

        def _raw(self, code: int, data: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _parse_body(ctype: str, raw: bytes, params: dict[str, Any]) -> dict[str, bytes]:
    """Form, JSON or multipart fields into ``params``; the multipart files returned."""
    files: dict[str, bytes] = {}
    if ctype.startswith("multipart/"):
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
        for part in msg.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            if part.get_filename():
                files[name] = payload
            else:
                params[name] = payload.decode()
    elif ctype.startswith("application/json"):
        params.update(json.loads(raw or b"{}"))
    elif raw:
        params.update(parse_qsl(raw.decode()))
    return files


def _fault_body(fault: Fault) -> dict[str, Any]:
    if fault.status == 429:
        return {"ok": False, "error_code": 429, "description": "Too Many Requests",
                "parameters": {"retry_after": fault.retry_after}}
    return {"ok": False, "error_code": fault.status, "description": "Internal Server Error"}


def _get_updates(state: TelegramState, p: dict[str, Any], _f: dict[str, bytes]
                 ) -> tuple[int, Any]:
    offset = int(p.get("offset", 0))
    deadline = time.monotonic() + float(p.get("timeout", 0))
    with state.cond:
        state.updates = [u for u in state.updates if u["update_id"] >= offset]
        while not state.updates and time.monotonic() < deadline:
            state.cond.wait(min(0.05, max(deadline - time.monotonic(), 0)))
        return 200, list(state.updates)


def _send_message(state: TelegramState, p: dict[str, Any], _f: dict[str, bytes]
                  ) -> tuple[int, Any]:
    text = str(p.get("text", ""))
    if not text or len(text) > 4096:
        return 400, "Bad Request: message text is empty or too long"
    with state.cond:
        state.sent.append((int(p["chat_id"]), text))
        state.cond.notify_all()
        return 200, {"message_id": len(state.sent), "text": text}


def _send_photo(state: TelegramState, p: dict[str, Any], f: dict[str, bytes]
                ) -> tuple[int, Any]:
    photo = f.get("photo")
    if not photo or not photo.startswith(b"\x89PNG"):
        return 400, "Bad Request: there is no photo in the request"
    with state.cond:
        state.photos.append((int(p["chat_id"]), photo, str(p.get("caption", ""))))
        state.cond.notify_all()
        return 200, {"message_id": 10_000 + len(state.photos)}


def _not_found(_s: TelegramState, _p: dict[str, Any], _f: dict[str, bytes]) -> tuple[int, Any]:
    return 404, "Not Found"


METHODS = {"getUpdates": _get_updates, "sendMessage": _send_message, "sendPhoto": _send_photo,
           "getMe": lambda s, p, f: (200, {"id": 1, "is_bot": True, "username": "fake_bot"})}


class WebhookReceiver:
    """A JSON POST receiver; ``received`` holds the bodies it accepted."""

    def __init__(self, mode: str = "ok", delay_s: float = 2.0) -> None:
        self.mode = mode
        self.delay_s = delay_s
        self.received: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": POLL_S})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hook.mode == "garbage":
                    self.wfile.write(b"\x00\xffthis is not http\r\n\r\n")
                    return
                if hook.mode == "slow":
                    time.sleep(hook.delay_s)
                if hook.mode == "error":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                hook.received.append(json.loads(raw))
                self.send_response(204)
                self.end_headers()

        return Handler
