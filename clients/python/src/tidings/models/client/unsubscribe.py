# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr


class Payload(BaseModel):
    subscription_id: Annotated[
        StrictStr,
        Field(
            alias="subscriptionId",
            description="The id from the `subscribe` reply.",
            max_length=200,
            min_length=1,
        ),
    ]


class UnsubscribeClientToServer(BaseModel):
    type: Literal["unsubscribe"]
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
            description="`unsubscribe` from a client: ends one subscription of this connection."
        ),
    ]
