# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr
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


class Payload(BaseModel):
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


class CreateClientToServer(BaseModel):
    type: Literal["create"]
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
        Payload, Field(description="`create`: a new resource of a type, with its data.")
    ]
