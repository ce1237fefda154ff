"""Writes the seed corpora of the fuzz targets from the protocol's test vectors (scripts/fuzz --seed).

Seeds give libFuzzer well-formed starting points, so it spends its time near the protocol's edges instead of
rediscovering JSON. Every file is named after its content's hash, so writing twice changes nothing.
"""

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "protocol" / "vectors"


def vector_texts(side=None):
    """The text of every vector case, valid and invalid, from one side or both."""
    texts = []
    for path in sorted(VECTORS.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            if side and case.get("side") != side:
                continue
            if "text" in case:
                texts.append(case["text"])
            else:
                texts.append(json.dumps(case["message"], separators=(",", ":"), ensure_ascii=False))
    return texts


def message(kind, payload, request_id=None):
    envelope = {"type": kind, "timestamp": 1764000000000, "payload": payload}
    if request_id:
        envelope["requestId"] = request_id
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def decode_seeds():
    return [text.encode() for text in vector_texts()]


def session_seeds():
    """Sequences a client might send: the handshake, then operations, subscriptions and oddities."""
    hello = [message("connect", {"protocolVersion": "1.0"}, "c"), message("auth", {"token": "$alice"}, "a")]
    order = {"productId": "P1", "quantity": 2, "totalAmount": 9.5}
    sequences = [
        hello + [message("create", {"resourceType": "order", "data": order}, "r1"),
                 message("read", {"resourceType": "order", "limit": 5}, "r2")],
        hello + [message("subscribe", {"topic": "order"}, "s1"),
                 message("create", {"resourceType": "order", "data": order}, "r1"),
                 message("unsubscribe", {"topic": "order"}, "s2")],
        hello + [message("subscribe", {"topic": "order", "since": 0}, "s1"), "!ping",
                 message("ping", {}, "p"), "!close"],
        [message("auth", {"token": "$admin"}, "a"),
         message("create", {"resourceType": "order", "data": order}, "x"),
         message("update", {"resourceType": "order", "id": "ORD-1", "patch": {"status": "paid"}}, "u"),
         message("delete", {"resourceType": "order", "id": "ORD-1"}, "d")],
        [message("auth", {"token": "$bob"}, "a"), message("auth", {"token": "$alice"}, "b"),
         message("subscribe", {"topic": "order:ORD-1"}, "s"), message("subscribe", {"topic": "user:bob"}, "t")],
        hello + ["!binary", "!badutf8", "!toobig"],
        [message("create", {"resourceType": "order", "data": order}, "early"), message("disconnect", {}, "bye")],
    ]
    # Every client vector after a handshake, so each reaches the operation it names.
    sequences += [hello + [text] for text in vector_texts("client")]
    return ["\n".join(lines).encode() for lines in sequences]


def merge_seeds():
    pairs = [
        ({"productId": "P", "quantity": 1, "totalAmount": 1, "status": "pending"}, {"status": "paid"}),
        ({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}, {"a": 10, "b": {"c": None}, "e": None, "f": [1]}),
        ({"a": [1, 2]}, {"a": {"b": None}}),
        ({"a": {"b": {"c": 1}}}, {"a": {"b": {"c": None, "d": {"e": None}}}}),
        ({}, {"x": "\u0000", "y": 18446744073709551616, "z": -0.0}),
    ]
    return [(json.dumps(a) + "\n" + json.dumps(b)).encode() for a, b in pairs]


def list_seeds():
    reads = [
        {"resourceType": "order"},
        {"resourceType": "order", "limit": 3},
        {"resourceType": "order", "orderBy": "-createdAt", "limit": 7},
        {"resourceType": "order", "orderBy": "productId", "limit": 4},
        {"resourceType": "order", "orderBy": "-totalAmount", "limit": 2},
        {"resourceType": "order", "orderBy": "quantity", "filter": {"status": "paid"}, "limit": 5},
        {"resourceType": "order", "filter": {"productId": "a'; DROP TABLE resources; --"}},
        {"resourceType": "order", "filter": {"quantity": 2.0, "totalAmount": 1e9}},
        {"resourceType": "order", "filter": {"notes": None}, "orderBy": "-updatedAt", "limit": 1},
        {"resourceType": "order", "filter": {"productId": "%"}, "orderBy": "id"},
        {"resourceType": "order", "filter": {"paid": True}},
        {"resourceType": "order", "query": {"field": "data.status", "eq": "paid"}, "limit": 4},
        {"resourceType": "order", "query": {"and": [{"field": "data.totalAmount", "gte": 100},
                                                    {"not": {"field": "data.productId", "in": ["A", "b", "%"]}}]}},
        {"resourceType": "order", "query": {"or": [{"field": "data.productId", "prefix": "a'"},
                                                   {"field": "data.productId", "contains": "_"},
                                                   {"field": "ownerId", "ne": "alice"}]}, "orderBy": "-quantity"},
        {"resourceType": "order", "query": {"field": "data.quantity", "lt": 3}, "filter": {"status": "pending"}},
        {"resourceType": "order", "orderBy": ["status", "-totalAmount"], "limit": 3, "count": True},
        {"resourceType": "order", "orderBy": ["-quantity", "productId", "-createdAt"], "fields": ["quantity"]},
        {"resourceType": "order", "orderBy": ["productId", "productId"]},
        {"resourceType": "order", "query": {"field": "data.status", "ne": "paid"}, "orderBy": ["-status", "id"],
         "fields": ["status", "productId"], "count": True, "limit": 2},
    ]
    seeds = []
    for n, payload in enumerate(reads):
        text = message("read", payload, f"l{n}").encode()
        seeds += [b"\x00" + text, b"\x01" + text]
    return seeds


def token_seeds():
    def b64(value):
        import base64
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    forged = [
        "",
        "not-a-token",
        "a.b.c",
        b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "alice", "exp": 4102444800}) + ".",
        b64({"alg": "HS512"}) + "." + b64({"sub": "alice", "exp": 4102444800}) + ".c2lnbmF0dXJl",
        b64({"alg": "HS256"}) + "." + b64({"sub": "alice", "exp": 4102444800, "roles": ["admin"]}) + ".AAAA",
    ]
    claims = [
        ({"alg": "HS256", "typ": "JWT"}, {"sub": "alice", "exp": 4102444800}),
        ({"alg": "HS256"}, {"sub": "alice", "exp": 4102444800, "roles": ["admin"], "nbf": 0}),
        ({"alg": "HS256"}, {"sub": "", "exp": 4102444800}),
        ({"alg": "HS256"}, {"sub": "alice", "exp": 1}),
        ({"alg": "HS256"}, {"sub": "alice", "exp": 4102444800, "nbf": 4102444800}),
        ({"alg": "HS256"}, {"sub": 7, "exp": "4102444800"}),
        ({"alg": "none"}, {"sub": "alice", "exp": 4102444800}),
    ]
    seeds = [b"f" + token.encode() for token in forged]
    seeds += [b"m" + bytes(pair) for pair in ([0, ord("x")], [40, 200], [100, ord("A"), 101, ord("B")])]
    seeds += [b"s" + (json.dumps(h) + "\n" + json.dumps(c)).encode() for h, c in claims]
    return seeds


SEEDS = {
    "decode": decode_seeds,
    "session": session_seeds,
    "merge": merge_seeds,
    "list": list_seeds,
    "token": token_seeds,
}


def write(corpus):
    for target, make in SEEDS.items():
        directory = corpus / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in make():
            (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        print(f"{target}: {len(list(directory.iterdir()))} seeds in {directory.relative_to(ROOT)}")
