# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr


class Heartbeat(BaseModel):
    ping_interval_ms: Annotated[
        StrictInt,
        Field(
            alias="pingIntervalMs",
            description="How often the server sends `ping`; a client that hears nothing for this plus a margin may assume the link is dead.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    idle_timeout_ms: Annotated[
        StrictInt,
        Field(
            alias="idleTimeoutMs",
            description="The server closes with 4000 when it receives nothing from the client for this long.",
            ge=0,
            le=9007199254740991,
        ),
    ]


class RateLimit(BaseModel):
    messages_per_second: Annotated[
        StrictInt,
        Field(
            alias="messagesPerSecond",
            description="The sustained rate.",
            ge=0,
            le=4294967295,
        ),
    ]
    burst: Annotated[
        StrictInt, Field(description="The bucket's size.", ge=0, le=4294967295)
    ]


class QueryLimits(BaseModel):
    max_depth: Annotated[
        StrictInt,
        Field(
            alias="maxDepth",
            description="How deep `and`, `or` and `not` may nest.",
            ge=0,
            le=4294967295,
        ),
    ]
    max_terms: Annotated[
        StrictInt,
        Field(
            alias="maxTerms",
            description="How many terms one query may have.",
            ge=0,
            le=4294967295,
        ),
    ]
    max_values: Annotated[
        StrictInt,
        Field(
            alias="maxValues",
            description="How many values `in` and `nin` may list.",
            ge=0,
            le=4294967295,
        ),
    ]
    max_string_length: Annotated[
        StrictInt,
        Field(
            alias="maxStringLength",
            description="The longest string operand, in characters.",
            ge=0,
            le=4294967295,
        ),
    ]


class PresenceLimits(BaseModel):
    max_members: Annotated[
        StrictInt,
        Field(
            alias="maxMembers",
            description="Members one topic may have.",
            ge=0,
            le=4294967295,
        ),
    ]
    max_state_bytes: Annotated[
        StrictInt,
        Field(
            alias="maxStateBytes",
            description="The largest `state` of a member, in bytes of JSON.",
            ge=0,
            le=4294967295,
        ),
    ]
    max_joins: Annotated[
        StrictInt,
        Field(
            alias="maxJoins",
            description="Topics one connection may be present at at once.",
            ge=0,
            le=4294967295,
        ),
    ]


class Limits(BaseModel):
    max_message_bytes: Annotated[
        StrictInt,
        Field(
            alias="maxMessageBytes",
            description="The largest message accepted, in bytes of UTF-8; larger ones get PAYLOAD_TOO_LARGE.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    max_subscriptions: Annotated[
        StrictInt,
        Field(
            alias="maxSubscriptions",
            description="Subscriptions one connection may hold; one more gets LIMIT_EXCEEDED.",
            ge=0,
            le=4294967295,
        ),
    ]
    rate_limit: Annotated[
        RateLimit,
        Field(
            alias="rateLimit",
            description="The per-connection token bucket; messages beyond it get RATE_LIMITED.",
        ),
    ]
    query: Annotated[
        QueryLimits | None,
        Field(
            description="The bounds of a query (protocol 1.1; docs/protocol.md, 7.7), the same on every server of a version."
        ),
    ] = None
    max_batch_operations: Annotated[
        StrictInt | None,
        Field(
            alias="maxBatchOperations",
            description="The most operations one `batch` may hold (protocol 1.2); more get LIMIT_EXCEEDED.",
            ge=0,
            le=4294967295,
        ),
    ] = None
    presence: Annotated[
        PresenceLimits | None,
        Field(
            description="The bounds of presence (protocol 1.2; docs/protocol.md, 8.7)."
        ),
    ] = None


class Payload(BaseModel):
    protocol_version: Annotated[
        StrictStr,
        Field(
            alias="protocolVersion",
            description="The server's own version, the highest 1.x it speaks, such as `1.0`; a client accepts any 1.x.",
        ),
    ]
    session_id: Annotated[
        StrictStr,
        Field(
            alias="sessionId",
            description="This connection's id, as logs and the admin API show it.",
        ),
    ]
    heartbeat: Annotated[Heartbeat, Field(description="Heartbeat timing.")]
    auth_timeout_ms: Annotated[
        StrictInt,
        Field(
            alias="authTimeoutMs",
            description="Milliseconds from the opening of the socket within which `auth` must succeed.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    limits: Annotated[
        Limits, Field(description="Limits the server enforces on this connection.")
    ]


class ConnectServerToClient(BaseModel):
    type: Literal["connect"]
    timestamp: Annotated[
        StrictFloat,
        Field(
            description="Unix time in milliseconds when the server sent the message.",
            ge=0.0,
            le=9007199254740991.0,
        ),
    ]
    request_id: Annotated[
        StrictStr | None,
        Field(
            alias="requestId",
            description="Correlates a reply with its request: 1 to 128 printable ASCII characters.",
            pattern="^[ -~]{1,128}$",
        ),
    ] = None
    payload: Annotated[
        Payload,
        Field(
            description="The `connect` reply: what the client needs to know to keep the session healthy."
        ),
    ]
