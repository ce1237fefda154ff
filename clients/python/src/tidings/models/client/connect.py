# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
from typing_extensions import TypeAliasType

VersionOrMajor1 = TypeAliasType(
    "VersionOrMajor1",
    Annotated[
        StrictInt,
        Field(
            description="A major version: a whole number (`1`, or `1.0` as some encoders write it).",
            ge=0,
            le=9999,
        ),
    ],
)


ProtocolVersion = TypeAliasType(
    "ProtocolVersion",
    Annotated[
        StrictStr,
        Field(
            description="must be a version such as '1.0'",
            pattern="^[0-9]{1,4}(\\.[0-9]{1,4})?$",
        ),
    ],
)


class ClientInfo(BaseModel):
    name: Annotated[
        StrictStr | None,
        Field(
            description="The client library or application, such as `tidings-js`.",
            max_length=64,
            min_length=1,
        ),
    ] = None
    version: Annotated[
        StrictStr | None, Field(description="Its version.", max_length=64, min_length=1)
    ] = None


VersionOrMajor = TypeAliasType(
    "VersionOrMajor",
    Annotated[
        ProtocolVersion | VersionOrMajor1,
        Field(
            description='A protocol version as `connect` may give it: `"1.1"`, or a major version as a whole number.'
        ),
    ],
)


class Payload(BaseModel):
    protocol_version: Annotated[
        VersionOrMajor | None,
        Field(
            alias="protocolVersion",
            description="The protocol version the client speaks, such as `1.0`; the major version must be 1. Since 1.1 it may be\nleft out (the newest 1.x) or given as a whole number, a major version (`1`).",
        ),
    ] = "1.2"
    client: Annotated[
        ClientInfo | None,
        Field(
            description="Who the client is, for the server's logs and connection list."
        ),
    ] = None


class ConnectClientToServer(BaseModel):
    type: Literal["connect"]
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
        Payload, Field(description="`connect`: the first message of a session.")
    ]
