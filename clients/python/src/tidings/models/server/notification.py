# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
from typing_extensions import TypeAliasType

Seq = TypeAliasType(
    "Seq",
    Annotated[
        StrictInt,
        Field(
            description="must be an integer from 0 to 2^53-1", ge=0, le=9007199254740991
        ),
    ],
)


Level = TypeAliasType(
    "Level",
    Annotated[
        Literal["info", "success", "warning", "error"],
        Field(description="The levels of a [`Notification`]."),
    ],
)


class Payload(BaseModel):
    id: Annotated[
        StrictStr,
        Field(
            description="Unique per notification, such as `NTF-1f3a`.",
            max_length=128,
            min_length=1,
        ),
    ]
    seq: Annotated[
        Seq,
        Field(
            description="The notification's position among the user's notifications."
        ),
    ]
    level: Annotated[Level, Field(description="How a client should present it.")]
    title: Annotated[StrictStr, Field(description="A short headline.", max_length=200)]
    body: Annotated[StrictStr, Field(description="The text.", max_length=4000)]
    data: Annotated[
        dict[str, Any] | None,
        Field(
            description="Anything the sender attached, such as the order it is about."
        ),
    ] = {}
    created_at: Annotated[
        StrictInt,
        Field(
            alias="createdAt",
            description="When it was created, in Unix milliseconds.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    subscription_id: Annotated[
        StrictStr | None,
        Field(
            alias="subscriptionId",
            description="Present when delivered through a subscription to `notifications`.",
            max_length=200,
            min_length=1,
        ),
    ] = None


class NotificationServerToClient(BaseModel):
    type: Literal["notification"]
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
            description="A `notification` for one user: pushed to each of the user's connections, kept while the user is offline."
        ),
    ]
