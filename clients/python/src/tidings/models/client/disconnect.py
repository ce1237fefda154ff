# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr


class Payload(BaseModel):
    reason: Annotated[
        StrictStr | None,
        Field(
            description="Why the client leaves. A bad reason is ignored: the server closes with 1000 all the same.",
            max_length=123,
        ),
    ] = None


class DisconnectClientToServer(BaseModel):
    type: Literal["disconnect"]
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
            description="`disconnect` from a client: an optional reason, for the server's logs. It decodes whenever its envelope is\nvalid: a payload that breaks its schema decodes as the default, without a reason."
        ),
    ]
