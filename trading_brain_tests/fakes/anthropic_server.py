"""A local fake of the Anthropic Messages API on 127.0.0.1, in the real response schema.

Contract:
- ``with FakeAnthropic(api_key="k") as fa:`` serves ``fa.url`` (give it to the SDK as
  ``base_url``). Endpoints: ``POST /v1/messages`` (needs ``model``, ``max_tokens``,
  ``messages``; a given ``output_config.format`` must be ``{"type": "json_schema", "schema":
  {...}}``; else 400 ``invalid_request_error``), ``POST /v1/messages/count_tokens`` (``{"input_
  tokens": n}``, n = ``count(body)`` ≈ characters / 4 of system, messages and schema) and
  ``GET /v1/models`` (one page of ``fa.models``). A request without the key (``x-api-key``, or
  ``Authorization: Bearer`` as SDK 2.x sends it) is 401 ``authentication_error``.
- Replies to ``/v1/messages`` come from ``fa.script(*replies)`` in order, then from
  ``responder(body)`` when one is given, else 500 with ``x-should-retry: false``. A ``Scripted``
  is a message (``ok(obj)``: JSON text, ``text(s)`` raw text; ``refusal()``;
  ``truncated(s)``: ``stop_reason`` ``max_tokens``), an error (``rate_limited(retry_after)``
  429, ``overloaded(retry_after)`` 529, with ``retry-after`` in seconds) or any of them after
  ``delay_s`` (``slow(s, reply)``: beyond the client's timeout it is a timeout).
- Usage: a scripted ``usage`` is returned as is; otherwise it is computed like the API: the
  prompt up to its last ``cache_control`` block (system, then messages) is written to the cache
  on the first call with that prefix (``cache_creation_input_tokens``) and read afterwards
  (``cache_read_input_tokens``); ``input_tokens`` is the rest; ``output_tokens`` = reply / 4.
- ``fa.requests``: every request as ``(path, body)`` (headers are not kept); ``fa.calls(path)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

MODELS = ("claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5")


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens,
                "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation_input_tokens,
                                   "ephemeral_1h_input_tokens": 0},
                "server_tool_use": None, "service_tier": "standard", "inference_geo": None}


@dataclass(frozen=True)
class Scripted:
    """One scripted answer (module docstring)."""

    text: str = ""
    stop_reason: str = "end_turn"
    usage: Usage | None = None
    status: int = 200
    error_type: str = ""
    retry_after: float | None = None
    delay_s: float = 0.0


def ok(obj: Any, usage: Usage | None = None) -> Scripted:
    return Scripted(json.dumps(obj), usage=usage)


def text(s: str, usage: Usage | None = None) -> Scripted:
    return Scripted(s, usage=usage)


def refusal() -> Scripted:
    return Scripted("I can't help with that.", stop_reason="refusal")


def truncated(s: str = '{"action": "no_change", "reasoning": "The fees') -> Scripted:
    return Scripted(s, stop_reason="max_tokens")


def rate_limited(retry_after: float = 0.01) -> Scripted:
    return Scripted(status=429, error_type="rate_limit_error", retry_after=retry_after)


def overloaded(retry_after: float = 0.01) -> Scripted:
    return Scripted(status=529, error_type="overloaded_error", retry_after=retry_after)


def slow(delay_s: float, reply: Scripted) -> Scripted:
    return Scripted(reply.text, reply.stop_reason, reply.usage, reply.status, reply.error_type,
                    reply.retry_after, delay_s)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        if "text" in value and isinstance(value["text"], str):
            return [value["text"]]
        return _texts(value.get("content", []))
    return []


def count(body: dict[str, Any]) -> int:
    """Input tokens of a request: about characters / 4 (system, messages, schema)."""
    chars = sum(len(t) for t in _texts(body.get("system", [])) + _texts(body.get("messages", [])))
    fmt = (body.get("output_config") or {}).get("format")
    chars += len(json.dumps(fmt)) if fmt else 0
    return max(1, chars // 4)


@dataclass
class _State:
    api_key: str
    models: tuple[str, ...]
    responder: Callable[[dict[str, Any]], Scripted] | None
    queue: list[Scripted] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cached: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    n: int = 0


def _usage(state: _State, body: dict[str, Any], reply: Scripted) -> Usage:
    if reply.usage is not None:
        return reply.usage
    total, prefix, text = count(body), "", ""
    blocks = list(body.get("system") or [])
    for m in body.get("messages") or []:
        content = m.get("content")
        blocks += content if isinstance(content, list) else [{"text": content}]
    for block in blocks:  # the prefix up to the last cache breakpoint
        text += block.get("text", "") if isinstance(block, dict) else ""
        if isinstance(block, dict) and block.get("cache_control"):
            prefix = text
    cached = min(total, len(prefix) // 4)
    with state.lock:
        hit = prefix in state.cached
        state.cached.add(prefix)
    write, read = (0, cached) if hit else (cached, 0)
    return Usage(total - cached, max(1, len(reply.text) // 4), write, read)


class _Handler(BaseHTTPRequestHandler):
    @property
    def state(self) -> _State:
        return cast(_Server, self.server).state

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("request-id", f"req_fake_{self.state.n}")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _error(self, status: int, kind: str, message: str,
               headers: dict[str, str] | None = None) -> None:
        self._send(status, {"type": "error", "error": {"type": kind, "message": message},
                            "request_id": "req_fake"}, headers)

    def _authorised(self) -> bool:
        key = self.state.api_key
        if self.headers.get("x-api-key") != key \
                and self.headers.get("authorization") != f"Bearer {key}":
            self._error(401, "authentication_error", "invalid x-api-key")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._authorised():
            return
        if not self.path.startswith("/v1/models"):
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        data = [{"type": "model", "id": m, "display_name": m, "lifecycle": "active",
                 "created_at": "2025-09-29T00:00:00Z"} for m in self.state.models]
        self._send(200, {"data": data, "has_more": False,
                         "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        state = self.state
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        path = self.path.split("?")[0]
        with state.lock:
            state.requests.append((path, body))
        if not self._authorised():
            return
        if path == "/v1/messages/count_tokens":
            self._send(200, {"input_tokens": count(body)})
            return
        if path != "/v1/messages":
            self._error(404, "not_found_error", f"no route {path}")
            return
        fmt = (body.get("output_config") or {}).get("format")
        if not body.get("model") or not body.get("max_tokens") or not body.get("messages") \
                or (fmt is not None and (fmt.get("type") != "json_schema"
                                         or not isinstance(fmt.get("schema"), dict))):
            self._error(400, "invalid_request_error", "model, max_tokens, messages and a "
                                                      "json_schema output format are required")
            return
        self._answer(state, body)

    def _answer(self, state: _State, body: dict[str, Any]) -> None:
        with state.lock:
            state.n += 1
            reply = state.queue.pop(0) if state.queue else None
        if reply is None and state.responder is not None:
            reply = state.responder(body)
        if reply is None:
            self._error(500, "api_error", "fake: no scripted reply", {"x-should-retry": "false"})
            return
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after else {}
            self._error(reply.status, reply.error_type, reply.error_type.replace("_", " "),
                        headers)
            return
        self._send(200, {
            "id": f"msg_fake_{state.n:04d}", "type": "message", "role": "assistant",
            "model": body["model"], "container": None, "stop_sequence": None,
            "content": [{"type": "text", "text": reply.text, "citations": None}],
            "stop_reason": reply.stop_reason, "usage": _usage(state, body, reply).as_json()})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeAnthropic:
    """The fake Messages API (module docstring)."""

    def __init__(self, api_key: str = "sk-ant-fake", models: tuple[str, ...] = MODELS,
                 responder: Callable[[dict[str, Any]], Scripted] | None = None) -> None:
        self.state = _State(api_key, models, responder)
        self.server = _Server(self.state)
        # shutdown() waits for the loop's next poll: 0.05 s, not the default 0.5 s per test
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})

    def __enter__(self) -> FakeAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *replies: Scripted) -> None:
        with self.state.lock:
            self.state.queue.extend(replies)

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        with self.state.lock:
            return list(self.state.requests)

    def calls(self, path: str = "/v1/messages") -> list[dict[str, Any]]:
        return [body for p, body in self.requests if p == path]

    @property
    def pending(self) -> int:
        with self.state.lock:
            return len(self.state.queue)
