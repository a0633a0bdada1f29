"""Signing (Kraken's published vector), credentials hygiene and the nonce source."""

from __future__ import annotations

import threading

import pytest

from trading_brain.adapters.kraken.signing import Credentials, NonceSource, encode_body, sign
from trading_brain.errors import ConfigError, OperationalError

VECTOR_SECRET = ("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZ"
                 "uj6F1huXg==")
VECTOR_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
VECTOR_SIGN = ("4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8"
               "ndwLUQ==")


def test_published_test_vector() -> None:
    assert sign("/0/private/AddOrder", 1616492376594, VECTOR_BODY, VECTOR_SECRET) == VECTOR_SIGN


def test_signature_depends_on_every_input() -> None:
    base = sign("/0/private/AddOrder", 1616492376594, VECTOR_BODY, VECTOR_SECRET)
    assert sign("/0/private/Balance", 1616492376594, VECTOR_BODY, VECTOR_SECRET) != base
    assert sign("/0/private/AddOrder", 1616492376595, VECTOR_BODY, VECTOR_SECRET) != base
    assert sign("/0/private/AddOrder", 1616492376594, VECTOR_BODY + "&x=1", VECTOR_SECRET) != base


def test_encode_body_matches_vector_and_refuses_lists() -> None:
    body = encode_body({"nonce": 1616492376594, "ordertype": "limit", "pair": "XBTUSD",
                        "price": "37500", "type": "buy", "volume": "1.25"})
    assert body == VECTOR_BODY
    assert encode_body({"validate": True}) == "validate=true"
    with pytest.raises(ConfigError, match="txid"):
        encode_body({"txid": ["A", "B"]})


def test_credentials_never_print_secrets() -> None:
    c = Credentials("my-public-key", VECTOR_SECRET)
    for text in (repr(c), str(c), f"{c}"):
        assert "my-public-key" not in text and VECTOR_SECRET[:10] not in text
    h = c.headers("/0/private/AddOrder", 1616492376594, VECTOR_BODY)
    assert h == {"API-Key": "my-public-key", "API-Sign": VECTOR_SIGN}
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(c)


def test_bad_secret_is_operational_and_not_echoed() -> None:
    with pytest.raises(OperationalError) as info:
        Credentials("k", "not base64 !!secret-value")
    assert "secret-value" not in str(info.value)
    with pytest.raises(OperationalError):
        Credentials("", VECTOR_SECRET)


def test_nonce_strictly_increasing_when_clock_stalls_or_goes_back() -> None:
    times = iter([1000, 1000, 999, 1005, 1005])
    n = NonceSource(now_ms=lambda: next(times))
    assert [n.next() for _ in range(5)] == [1000, 1001, 1002, 1005, 1006]


def test_nonce_resumes_above_persisted_high_water_mark() -> None:
    saved: list[int] = []
    n = NonceSource(now_ms=lambda: 10, start=5000, persist=saved.append)
    assert n.next() == 5001 and n.next() == 5002
    assert saved == [5001, 5002] and n.high_water == 5002
    restarted = NonceSource(now_ms=lambda: 10, start=saved[-1])
    assert restarted.next() == 5003


def test_nonce_is_not_issued_when_persisting_fails() -> None:
    def boom(_: int) -> None:
        raise OSError("disk full")

    n = NonceSource(now_ms=lambda: 10, start=7, persist=boom)
    with pytest.raises(OSError):
        n.next()
    assert n.high_water == 7


def test_nonce_monotonic_under_threads() -> None:
    n = NonceSource(now_ms=lambda: 42)  # a frozen clock: every nonce must still be unique
    out: list[list[int]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        for _ in range(500):
            out[i].append(n.next())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [x for chunk in out for x in chunk]
    assert len(set(every)) == 4000
    assert all(a < b for chunk in out for a, b in zip(chunk, chunk[1:], strict=False))
    assert max(every) == 42 + 3999
