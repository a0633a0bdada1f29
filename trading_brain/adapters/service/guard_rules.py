"""Which browser requests may reach the Dagster UI of ``trading-brain up`` (pure rules, no I/O).

Dagster's webserver has no authentication and answers GraphQL — mutations included, even as
``GET /graphql?query=…`` — whatever the ``Host`` header says. A hostile page could drive it by
DNS rebinding (its own name resolving to 127.0.0.1) or by plain cross-site requests. ``verdict``
decides, per request head:

- ``Host`` must be present once and name the bound port with the bound host, ``localhost``,
  ``127.0.0.1`` or ``[::1]`` (bound to all interfaces: also any IP literal — an IP is never a
  rebinding), or be one of the ``extra`` names the operator allowed (any port: the public name a
  reverse proxy in front passes on); anything else is 403 (this is what stops DNS rebinding);
- the request target must be origin-form (``/…``), so the Host header is the only authority;
- an ``Origin`` header (sent by browsers on cross-origin fetches, POSTs and every WebSocket
  handshake) must itself be an allowed ``http(s)://host:port``; ``null`` or foreign → 403;
- ``Sec-Fetch-Site: cross-site|same-site`` is refused unless it is a top-level navigation (a link
  to the UI still works, an ``<img>``/``<script>``/``<iframe>`` from another page does not);
- ``GET``/``HEAD /graphql`` carrying a ``query`` is refused unless it asks for HTML (which only
  renders GraphiQL): such a GET executes mutations and needs no Origin header;
- optional token (``TRADING_BRAIN_UI_TOKEN``): ``?token=T`` on a visit sets an HttpOnly
  ``SameSite=Strict`` cookie and redirects to the same URL without it; afterwards the cookie (or
  ``Authorization: Bearer T``) is required, else 401.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

COOKIE = "tb_ui_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


@dataclass(frozen=True)
class Policy:
    port: int
    hosts: frozenset[str]  # lower-case names; IPv6 literals in brackets
    any_ip: bool  # bound to every interface: any IP literal is a legitimate Host
    token: str | None = None
    extra: frozenset[str] = frozenset()  # names a reverse proxy in front sends, any port


@dataclass(frozen=True)
class Verdict:
    status: int  # 0: pass the request on; else answer it with this status
    text: str = ""
    location: str = ""  # 303 redirect target
    cookie: str = ""  # Set-Cookie value


PASS = Verdict(0)


def _bracketed(name: str) -> str:
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def policy_for(host: str, port: int, token: str | None = None,
               extra: tuple[str, ...] = ()) -> Policy:
    """The policy of a guard serving ``host:port`` (as given to ``up --host/--port``); ``extra``
    are further host names (``up --allow-host``), accepted with any port."""
    name = _bracketed(host)
    any_ip = name in ("0.0.0.0", "[::]", "")
    return Policy(port=port, hosts=LOOPBACK_NAMES | {name}, any_ip=any_ip, token=token or None,
                  extra=frozenset(_bracketed(e) for e in extra if e.strip()))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return False
    return True


def host_allowed(policy: Policy, authority: str) -> bool:
    """Whether ``authority`` (``name[:port]``) is the guard's own address."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        name, _, rest = authority.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, _, port = authority.partition(":")
    if not name or (port and not port.isdigit()):
        return False
    if name in policy.extra:
        return True
    if int(port or 80) != policy.port:
        return False
    return name in policy.hosts or (policy.any_ip and _is_ip(name))


def _refuse(text: str) -> Verdict:
    return Verdict(403, text)


def verdict(policy: Policy, method: str, target: str, headers: list[tuple[str, str]]) -> Verdict:
    """Decide about one request head (``headers`` as sent: names in any case, in order)."""
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value.strip())
    hosts = by_name.get("host", [])
    if len(hosts) != 1 or not host_allowed(policy, hosts[0]):
        shown = hosts[0][:80] if len(hosts) == 1 else f"{len(hosts)} Host headers"
        return _refuse(f"forbidden: Host {shown!r} is not this Trading Brain UI")
    if not target.startswith("/"):
        return _refuse("forbidden: only origin-form request targets are served")
    for origin in by_name.get("origin", []):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not host_allowed(policy, parts.netloc):
            return _refuse(f"forbidden: cross-origin request from {origin[:80]!r}")
    site = (by_name.get("sec-fetch-site") or ["none"])[0].lower()
    mode = (by_name.get("sec-fetch-mode") or [""])[0].lower()
    dest = (by_name.get("sec-fetch-dest") or [""])[0].lower()
    if site in ("cross-site", "same-site") and not (mode == "navigate" and dest == "document"):
        return _refuse(f"forbidden: {site} {mode or 'request'} to the UI")
    path, _, query = target.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    accept = ",".join(by_name.get("accept", []))
    if (method in ("GET", "HEAD") and path.rstrip("/") == "/graphql"
            and any(k == "query" for k, _ in params) and "text/html" not in accept):
        return _refuse("forbidden: GraphQL over GET (use POST from the UI)")
    if policy.token is not None:
        return _token_verdict(policy.token, path, params, by_name)
    return PASS


def _token_verdict(token: str, path: str, params: list[tuple[str, str]],
                   by_name: dict[str, list[str]]) -> Verdict:
    given = [v for k, v in params if k == "token"]
    if given:
        if not hmac.compare_digest(given[0].encode(), token.encode()):
            return Verdict(401, "unauthorized: wrong UI token")
        rest = urlencode([(k, v) for k, v in params if k != "token"])
        return Verdict(303, location=path + (f"?{rest}" if rest else ""),
                       cookie=f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
    for value in by_name.get("cookie", []):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except CookieError:
            continue
        if COOKIE in jar and hmac.compare_digest(jar[COOKIE].value.encode(), token.encode()):
            return PASS
    for value in by_name.get("authorization", []):
        scheme, _, cred = value.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(cred.strip().encode(),
                                                             token.encode()):
            return PASS
    return Verdict(401, "unauthorized: open the UI once with ?token=<TRADING_BRAIN_UI_TOKEN>")
