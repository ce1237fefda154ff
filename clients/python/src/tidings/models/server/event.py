# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
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


ActorKind = TypeAliasType(
    "ActorKind",
    Annotated[Literal["user", "system"], Field(description="The kinds of [`Actor`].")],
)


LeaveReason = TypeAliasType(
    "LeaveReason",
    Annotated[
        StrictStr,
        Field(
            description="Why a resource left a subscription's view: unmatched (a change made it stop matching the query), deleted, or hidden (a change made the read rule hide it from the subscriber; the event carries no data); later versions may add others.",
            pattern="^[a-z_]{1,32}$",
        ),
    ],
)


class Actor(BaseModel):
    kind: Annotated[ActorKind, Field(description="`user` or `system`.")]
    id: Annotated[
        StrictStr,
        Field(
            description="The user id, or the name of the system component.",
            max_length=256,
            min_length=1,
        ),
    ]


class Payload(BaseModel):
    event_type: Annotated[
        StrictStr,
        Field(
            alias="eventType",
            description="`<resourceType>_created`, `<resourceType>_updated` or `<resourceType>_deleted`, such as `order_created`;\nthrough a query subscription (protocol 1.1) also `<resourceType>_entered` and `<resourceType>_left`.",
            max_length=128,
            min_length=1,
        ),
    ]
    data: Annotated[
        dict[str, Any],
        Field(
            description="The resource's `data` after the change; for a deletion, its last `data`."
        ),
    ]
    topic: Annotated[
        Topic | None,
        Field(description="The topic of the subscription that delivers it."),
    ] = None
    subscription_id: Annotated[
        StrictStr | None,
        Field(
            alias="subscriptionId",
            description="The subscription that delivers it.",
            max_length=200,
            min_length=1,
        ),
    ] = None
    seq: Annotated[
        Seq | None,
        Field(
            description="Its position in the topic: strictly increasing within a topic, not necessarily by one."
        ),
    ] = None
    resource_type: Annotated[
        ResourceType | None,
        Field(
            alias="resourceType", description="The type of the resource that changed."
        ),
    ] = None
    id: Annotated[
        ResourceId | None, Field(description="The id of the resource that changed.")
    ] = None
    version: Annotated[
        Version | None, Field(description="The resource's version after the change.")
    ] = None
    owner_id: Annotated[
        StrictStr | None,
        Field(
            alias="ownerId",
            description="The resource's owner.",
            max_length=256,
            min_length=1,
        ),
    ] = None
    actor: Annotated[Actor | None, Field(description="Who made the change.")] = None
    occurred_at: Annotated[
        StrictInt | None,
        Field(
            alias="occurredAt",
            description="When the change was committed, in Unix milliseconds.",
            ge=0,
            le=9007199254740991,
        ),
    ] = None
    changed: Annotated[
        list[StrictStr] | None,
        Field(
            description="On an event of an update (protocol 1.1): the top-level `data` fields whose value the update changed (added,\nremoved or different), by name; absent when the server does not know (events logged before 1.1)."
        ),
    ] = None
    previous_data: Annotated[
        dict[str, Any] | None,
        Field(
            alias="previousData",
            description="On an `_updated` event of a type that keeps it (protocol 1.2; the type's `previous_data` setting): the\nresource's `data` before the change, without the fields hidden from the subscriber.",
        ),
    ] = None
    reason: Annotated[
        LeaveReason | None,
        Field(
            description="On a `_left` event (protocol 1.1): why the resource left the subscriber's view."
        ),
    ] = None


class EventServerToClient(BaseModel):
    type: Literal["event"]
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
            description="An `event`: something happened to a resource that a subscription covers.\n\nOnly `eventType` and `data` are required, so that the design notes' event (`{eventType, data}`) is valid.\nA Tidings server sets every field on every event it delivers through a subscription."
        ),
    ]
