# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr
from typing_extensions import TypeAliasType

Topic = TypeAliasType(
    "Topic",
    Annotated[
        StrictStr,
        Field(
            description="must be 'notifications', a resource type such as 'order', a resource such as 'order:ORD-1', or the presence of one of these, such as 'presence:order:ORD-1'",
            pattern="^(notifications|(presence:)?[a-z][a-z0-9_]{0,63}(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)$",
        ),
    ],
)


ErrorCode = TypeAliasType(
    "ErrorCode",
    Annotated[
        StrictStr,
        Field(
            description="An error code. Protocol v1 defines: INVALID_MESSAGE, INVALID_PARAMS, UNSUPPORTED_TYPE, INVALID_STATE, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED, PAYLOAD_TOO_LARGE, LIMIT_EXCEEDED, TOKEN_EXPIRED, UNSUPPORTED_VERSION, UNAVAILABLE, INTERNAL.",
            pattern="^[A-Z][A-Z_]{0,63}$",
        ),
    ],
)


class ErrorPayload(BaseModel):
    code: Annotated[ErrorCode, Field(description="One of the spec's error codes.")]
    message: Annotated[
        StrictStr,
        Field(
            description="A sentence for people; clients decide by `code`, never by `message`."
        ),
    ]
    details: Annotated[
        dict[str, Any] | None,
        Field(
            description="Facts about the error, by code: `errors` for INVALID_PARAMS, `retryAfterMs` for RATE_LIMITED, ..."
        ),
    ] = None


class Payload(BaseModel):
    subscription_id: Annotated[
        StrictStr,
        Field(
            alias="subscriptionId",
            description="The subscription that ended.",
            max_length=200,
            min_length=1,
        ),
    ]
    topic: Annotated[Topic | None, Field(description="Its topic.")] = None
    reason: Annotated[
        ErrorPayload | None,
        Field(
            description="Why the server ended it (only on a push), such as FORBIDDEN after a re-auth with fewer rights."
        ),
    ] = None


class UnsubscribeServerToClient(BaseModel):
    type: Literal["unsubscribe"]
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
            description="The `unsubscribe` reply, or a push when the server ends a subscription (then with `reason`)."
        ),
    ]
