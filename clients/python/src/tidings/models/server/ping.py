# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr


class PingServerToClient(BaseModel):
    type: Literal["ping"]
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
        dict[str, Any],
        Field(
            description="A payload with no fields, as `ping` and `pong` carry: `{}`. Extra fields are ignored."
        ),
    ]
