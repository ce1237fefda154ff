# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
from typing_extensions import TypeAliasType

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


class Deleted(BaseModel):
    resource_type: Annotated[
        ResourceType,
        Field(alias="resourceType", description="The type of the deleted resource."),
    ]
    id: Annotated[ResourceId, Field(description="Its id.")]
    version: Annotated[
        Version,
        Field(
            description="The version the deletion gave it: one more than its last version."
        ),
    ]
    deleted_at: Annotated[
        StrictInt,
        Field(
            alias="deletedAt",
            description="When it was deleted, in Unix milliseconds.",
            ge=0,
            le=9007199254740991,
        ),
    ]


class OperationResult1(Resource):
    op: Literal["create"]


class OperationResult2(Resource):
    op: Literal["update"]


class OperationResult3(Deleted):
    op: Literal["delete"]


OperationResult = TypeAliasType(
    "OperationResult",
    Annotated[
        OperationResult1 | OperationResult2 | OperationResult3,
        Field(
            description="What one operation of a batch did, with `op` naming the operation."
        ),
    ],
)


class Payload(BaseModel):
    results: Annotated[
        list[OperationResult],
        Field(
            description="What each operation did, as the reply to the single message would say it."
        ),
    ]


class BatchServerToClient(BaseModel):
    type: Literal["batch"]
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
        Field(description="The `batch` reply: one result per operation, in order."),
    ]
