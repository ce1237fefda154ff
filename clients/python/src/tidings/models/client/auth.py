# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr


class Payload(BaseModel):
    token: Annotated[
        StrictStr,
        Field(
            description="A JWT whose `sub` claim is the user id.",
            max_length=8192,
            min_length=1,
        ),
    ]
    user_id: Annotated[
        StrictStr | None,
        Field(
            alias="userId",
            description="When present, must equal the token's `sub`, or the server answers `auth_failed`.",
            max_length=256,
            min_length=1,
        ),
    ] = None


class AuthClientToServer(BaseModel):
    type: Literal["auth"]
    timestamp: Annotated[
        StrictFloat,
        Field(
            description="Unix time in milliseconds, or in seconds when below 10^11.",
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
            description="`auth`: a token, and optionally the user it must belong to (the design notes send both)."
        ),
    ]
