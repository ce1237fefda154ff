# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr


class Payload(BaseModel):
    user_id: Annotated[
        StrictStr,
        Field(
            alias="userId",
            description="The authenticated user: the token's `sub`.",
            max_length=256,
            min_length=1,
        ),
    ]
    roles: Annotated[
        list[StrictStr], Field(description="The token's roles, such as `admin`.")
    ]
    expires_at: Annotated[
        StrictInt,
        Field(
            alias="expiresAt",
            description="When the token expires, in Unix milliseconds; re-authenticate before then.",
            ge=0,
            le=9007199254740991,
        ),
    ]


class AuthSuccessServerToClient(BaseModel):
    type: Literal["auth_success"]
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
    payload: Annotated[Payload, Field(description="The `auth_success` reply.")]
