# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr
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


Seq = TypeAliasType(
    "Seq",
    Annotated[
        StrictInt,
        Field(
            description="must be an integer from 0 to 2^53-1", ge=0, le=9007199254740991
        ),
    ],
)


ResourceType = TypeAliasType(
    "ResourceType",
    Annotated[
        StrictStr,
        Field(
            description="must be a lowercase letter followed by up to 63 lowercase letters, digits or underscores",
            pattern="^[a-z][a-z0-9_]{0,63}$",
        ),
    ],
)


ResourceId = TypeAliasType(
    "ResourceId",
    Annotated[
        StrictStr,
        Field(
            description="must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        ),
    ],
)


Version = TypeAliasType(
    "Version",
    Annotated[
        StrictInt,
        Field(
            description="must be an integer from 1 to 2^53-1", ge=1, le=9007199254740991
        ),
    ],
)


class Resource(BaseModel):
    resource_type: Annotated[
        ResourceType,
        Field(
            alias="resourceType", description="The resource's type, such as `order`."
        ),
    ]
    id: Annotated[
        ResourceId,
        Field(description="Its id, chosen by the server, such as `ORD-78901`."),
    ]
    version: Annotated[
        Version, Field(description="1 after create, one more after each update.")
    ]
    owner_id: Annotated[
        StrictStr,
        Field(
            alias="ownerId",
            description="The user who created it.",
            max_length=256,
            min_length=1,
        ),
    ]
    created_at: Annotated[
        StrictInt,
        Field(
            alias="createdAt",
            description="When it was created, in Unix milliseconds.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    updated_at: Annotated[
        StrictInt,
        Field(
            alias="updatedAt",
            description="When it last changed, in Unix milliseconds.",
            ge=0,
            le=9007199254740991,
        ),
    ]
    data: Annotated[
        dict[str, Any],
        Field(description="Its fields, as the type's schema defines them."),
    ]


class Payload(BaseModel):
    subscription_id: Annotated[
        StrictStr,
        Field(
            alias="subscriptionId",
            description="Names this subscription in its events and in `unsubscribe`.",
            max_length=200,
            min_length=1,
        ),
    ]
    topic: Annotated[Topic, Field(description="The topic subscribed to.")]
    seq: Annotated[
        Seq,
        Field(
            description="The topic's current sequence number: live events will have greater ones."
        ),
    ]
    recovered: Annotated[
        StrictBool | None,
        Field(
            description="Present when the request had `since`: true if every event after `since` follows this reply, false if\nsome are gone (outside retention) and the client must re-read what it shows."
        ),
    ] = None
    items: Annotated[
        list[Resource] | None,
        Field(
            description="Present when the request asked for a `snapshot` (protocol 1.1) and no replay follows: the first page of\nwhat the subscription covers, exactly as of `seq`, in the order of `createdAt`."
        ),
    ] = None
    next_cursor: Annotated[
        StrictStr | None,
        Field(
            alias="nextCursor",
            description="With `items`, when more match: read the rest with `read` (the same `query`, this `cursor`).",
            max_length=512,
            min_length=1,
        ),
    ] = None


class SubscribeServerToClient(BaseModel):
    type: Literal["subscribe"]
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
    payload: Annotated[Payload, Field(description="The `subscribe` reply.")]
