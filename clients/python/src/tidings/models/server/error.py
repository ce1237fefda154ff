# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr
from typing_extensions import TypeAliasType

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


class Payload(BaseModel):
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


class ErrorServerToClient(BaseModel):
    type: Literal["error"]
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
            description="The payload of `error` and `auth_failed`: `{code, message, details?}`."
        ),
    ]
