"""Runs the shared protocol vectors (protocol/vectors/*.json) through the client's decoder and message models."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from pydantic import BaseModel

from tidings import backoff_delay, decode_server, is_client_message, known_error_code, should_reconnect
from tidings.protocol import CLIENT_TYPES, ERROR_CODES, _whole_numbers

from conftest import ROOT

VECTORS = ROOT / "protocol" / "vectors"


def _cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            cases.append({**case, "file": path.name})
    return cases


CASES = _cases()
SERVER = [c for c in CASES if c["side"] == "server"]
VALID_CLIENT = [c for c in CASES if c["side"] == "client" and "error" not in c["expect"]]


def _text(case: dict[str, Any]) -> str:
    return case["text"] if "text" in case else json.dumps(case["message"])


def test_there_are_enough_vectors() -> None:
    # A vector folder that moved or emptied would make every test below pass without checking anything.
    assert len(SERVER) >= 70, f"only {len(SERVER)} server cases"
    assert len(VALID_CLIENT) >= 50, f"only {len(VALID_CLIENT)} valid client cases"


@pytest.mark.parametrize("case", SERVER, ids=[c["name"] for c in SERVER])
def test_server_vector_decodes_as_the_spec_says(case: dict[str, Any]) -> None:
    decoded = decode_server(_text(case))
    expect = case["expect"]
    if "error" not in expect:
        assert decoded.kind != "invalid", decoded.errors
        assert decoded.type == expect["type"]
        assert decoded.message is not None and decoded.message.type == expect["type"]  # type: ignore[attr-defined]
        if "timestamp" in expect:
            assert decoded.raw["timestamp"] == expect["timestamp"]
            assert decoded.message.timestamp == expect["timestamp"]  # type: ignore[attr-defined]
        # As in the Rust and JavaScript runners, an expectation without requestId does not check it.
        if "requestId" in expect:
            assert decoded.kind == ("push" if expect["requestId"] is None else "reply")
            assert decoded.request_id == expect["requestId"]
        if "payloadCode" in expect:
            assert known_error_code(decoded.raw["payload"]["code"]) == expect["payloadCode"]
    else:
        assert decoded.kind == "invalid"
        assert decoded.code == expect["error"]
        if "requestId" in expect:
            assert decoded.request_id == expect["requestId"]
        if "pointers" in expect:
            assert sorted({e.pointer for e in decoded.errors}) == sorted(expect["pointers"])


def _client_model(kind: str) -> type[BaseModel]:
    module = importlib.import_module(f"tidings.models.client.{kind}")
    return next(v for k, v in vars(module).items() if k.endswith("ClientToServer"))


@pytest.mark.parametrize("case", VALID_CLIENT, ids=[c["name"] for c in VALID_CLIENT])
def test_valid_client_vector_passes_the_check_and_its_model(case: dict[str, Any]) -> None:
    message = json.loads(_text(case))
    assert is_client_message(message)
    if message["type"] == "disconnect":
        # A disconnect closes whatever its payload holds (docs/protocol.md, 6.2), so its vectors have bad reasons.
        message = {**message, "payload": {}}
    _client_model(message["type"]).model_validate(_whole_numbers(message))


def test_client_vectors_with_a_bad_envelope_or_type_fail_the_check() -> None:
    bad = [c for c in CASES if c["side"] == "client" and c["expect"].get("error") in ("INVALID_MESSAGE", "UNSUPPORTED_TYPE")
           and "message" in c]
    assert len(bad) > 10
    for case in bad:
        # Duplicate keys and deep nesting survive json.loads unseen; those cases come as text and are not here.
        assert not is_client_message(case["message"]), case["name"]


def test_a_repeated_top_level_key_and_deep_nesting_are_unreadable() -> None:
    repeated = decode_server('{"type": "pong", "timestamp": 1, "requestId": "p1", "type": "ping", "payload": {}}')
    assert (repeated.kind, repeated.code, repeated.request_id) == ("invalid", "INVALID_MESSAGE", "p1")
    assert [e.pointer for e in repeated.errors] == ["/type"]
    deep = '{"type": "pong", "timestamp": 1, "requestId": "p2", "payload": {"x": ' + "[" * 130 + "]" * 130 + "}}"
    decoded = decode_server(deep)
    assert (decoded.kind, decoded.code, decoded.request_id) == ("invalid", "INVALID_MESSAGE", "p2")
    # A repeated key below the top level is no error: the last value counts, as in JSON.parse.
    nested = decode_server('{"type": "pong", "timestamp": 1, "payload": {"a": 1, "a": 2}}')
    assert nested.kind == "push"


def test_timestamps_in_seconds_become_milliseconds_rounded_half_up() -> None:
    for sent, expected in ((1630423456, 1630423456000), (1630423456.5, 1630423456500), (1630423456000, 1630423456000),
                           (1764000000000.5, 1764000000001)):
        decoded = decode_server(json.dumps({"type": "ping", "timestamp": sent, "payload": {}}))
        assert decoded.raw["timestamp"] == expected, sent


def test_the_error_codes_are_those_of_protocol_codes_json() -> None:
    codes = json.loads((ROOT / "protocol" / "codes.json").read_text())
    assert list(ERROR_CODES) == codes["errorCodes"]
    assert known_error_code("SOMETHING_NEW") == "UNKNOWN"
    for close in codes["closeCodes"]:
        assert should_reconnect(close["code"]) == close["reconnect"], close


def test_every_client_type_has_a_model() -> None:
    for kind in CLIENT_TYPES:
        assert _client_model(kind) is not None


def test_close_codes_follow_section_11() -> None:
    for code in (1001, 1006, 1011, 4000, 4001, 4002, 4499, 1005, 3000):
        assert should_reconnect(code), code
    for code in (1000, 1002, 1003, 1007, 1008, 1009, 1010, 4500, 4501, 4502, 4503, 4999):
        assert not should_reconnect(code), code


def test_backoff_grows_exponentially_with_jitter_under_the_cap() -> None:
    assert backoff_delay(1, 0.5, 30, lambda: 0) == 0.25
    assert backoff_delay(1, 0.5, 30, lambda: 1) == 0.5
    assert backoff_delay(4, 0.5, 30, lambda: 1) == 4
    assert backoff_delay(20, 0.5, 30, lambda: 1) == 30
    assert backoff_delay(20, 0.5, 30, lambda: 0) == 15
