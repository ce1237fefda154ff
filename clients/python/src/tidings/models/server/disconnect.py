# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr


class Payload(BaseModel):
    code: Annotated[
        StrictInt,
        Field(
            description='The close code that follows (docs/protocol.md, "Close codes").',
            ge=0,
            le=65535,
        ),
    ]
    reason: Annotated[StrictStr, Field(description="The reason, for people.")]
    reconnect: Annotated[
        StrictBool,
        Field(description="Whether the client should reconnect (with backoff)."),
    ]


class DisconnectServerToClient(BaseModel):
    type: Literal["disconnect"]
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
            description="`disconnect` from the server: why it is about to close, and whether to come back."
        ),
    ]
