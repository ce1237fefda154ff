# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
from typing_extensions import TypeAliasType


class Operation(BaseModel):
    op: Literal["create", "update", "delete"]


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


class Create(BaseModel):
    resource_type: Annotated[
        ResourceType,
        Field(
            alias="resourceType",
            description="The type of resource to create, such as `order`.",
        ),
    ]
    data: Annotated[
        dict[str, Any],
        Field(
            description="The resource's fields, checked against the type's schema; schema defaults fill missing fields."
        ),
    ]


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


class Update(BaseModel):
    resource_type: Annotated[
        ResourceType,
        Field(alias="resourceType", description="The type of the resource."),
    ]
    id: Annotated[ResourceId, Field(description="The resource to change.")]
    patch: Annotated[
        dict[str, Any],
        Field(
            description="Fields to set; a field set to `null` is removed. Fields not named keep their value."
        ),
    ]
    expected_version: Annotated[
        Version | None,
        Field(
            alias="expectedVersion",
            description="When present, the update applies only if the resource is at this version (else CONFLICT).",
        ),
    ] = None


class Delete(BaseModel):
    resource_type: Annotated[
        ResourceType,
        Field(alias="resourceType", description="The type of the resource."),
    ]
    id: Annotated[ResourceId, Field(description="The resource to delete.")]
    expected_version: Annotated[
        Version | None,
        Field(
            alias="expectedVersion",
            description="When present, the delete applies only if the resource is at this version (else CONFLICT).",
        ),
    ] = None


class Payload(BaseModel):
    operations: Annotated[
        list[Operation],
        Field(
            description="The operations, applied in order: from one to 100 (`MAX_BATCH_OPERATIONS`), each resource at most once.",
            min_length=1,
        ),
    ]


class BatchClientToServer(BaseModel):
    type: Literal["batch"]
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
            description="`batch` (protocol 1.2): creates, updates and deletes of any types, applied together in one transaction or\nnot at all (docs/protocol.md, 7.8)."
        ),
    ]
