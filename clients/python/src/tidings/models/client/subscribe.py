# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)
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


FieldPath = TypeAliasType(
    "FieldPath",
    Annotated[
        StrictStr,
        Field(
            description="must be id, ownerId, version, createdAt, updatedAt, or data. and 1 to 8 field names joined by '.'",
            pattern="^(id|ownerId|version|createdAt|updatedAt|data(\\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8})$",
        ),
    ],
)


ScalarValue2 = TypeAliasType(
    "ScalarValue2",
    Annotated[
        StrictStr,
        Field(
            description="A scalar operand: a string, a number, `true`, `false` or `null`.",
            max_length=1024,
        ),
    ],
)


ScalarValue = TypeAliasType(
    "ScalarValue",
    Annotated[
        ScalarValue2 | StrictFloat | StrictBool | None,
        Field(
            description="A scalar operand: a string, a number, `true`, `false` or `null`."
        ),
    ],
)


OrderedValue2 = TypeAliasType(
    "OrderedValue2",
    Annotated[
        StrictStr,
        Field(
            description="An operand that has an order: a string or a number.",
            max_length=1024,
        ),
    ],
)


OrderedValue = TypeAliasType(
    "OrderedValue",
    Annotated[
        OrderedValue2 | StrictFloat,
        Field(description="An operand that has an order: a string or a number."),
    ],
)


ElementValue2 = TypeAliasType(
    "ElementValue2",
    Annotated[
        StrictStr,
        Field(
            description="An operand that an array's element or a string can be compared with.",
            max_length=1024,
        ),
    ],
)


ElementValue = TypeAliasType(
    "ElementValue",
    Annotated[
        ElementValue2 | StrictFloat | StrictBool,
        Field(
            description="An operand that an array's element or a string can be compared with."
        ),
    ],
)


ValueList = TypeAliasType(
    "ValueList",
    Annotated[
        list[ElementValue],
        Field(
            description="The operands of `in` and `nin`: 1 to 100 strings, numbers or booleans.",
            max_length=100,
            min_length=1,
        ),
    ],
)


class Term(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    field: Annotated[
        FieldPath,
        Field(
            description="`id`, `ownerId`, `version`, `createdAt`, `updatedAt`, or `data.` and a path into the resource's data."
        ),
    ]
    eq: Annotated[
        ScalarValue | None, Field(description="Equal to this (`null`: absent or null).")
    ] = None
    ne: Annotated[
        ScalarValue | None,
        Field(description="Not equal to this (`null`: present and not null)."),
    ] = None
    lt: Annotated[OrderedValue | None, Field(description="Less than this.")] = None
    lte: Annotated[
        OrderedValue | None, Field(description="Less than or equal to this.")
    ] = None
    gt: Annotated[OrderedValue | None, Field(description="Greater than this.")] = None
    gte: Annotated[
        OrderedValue | None, Field(description="Greater than or equal to this.")
    ] = None
    in_: Annotated[
        ValueList | None, Field(alias="in", description="Equal to one of these.")
    ] = None
    nin: Annotated[ValueList | None, Field(description="Equal to none of these.")] = (
        None
    )
    exists: Annotated[
        StrictBool | None,
        Field(description="`true`: present and not null; `false`: absent or null."),
    ] = None
    prefix: Annotated[
        StrictStr | None,
        Field(description="A string that starts with this.", max_length=1024),
    ] = None
    contains: Annotated[
        ElementValue | None,
        Field(
            description="A string that contains this, or an array with an element equal to it."
        ),
    ] = None


class Payload(BaseModel):
    topic: Annotated[
        Topic,
        Field(
            description="`notifications`, a resource type such as `order`, or one resource such as `order:ORD-78901`."
        ),
    ]
    since: Annotated[
        Seq | None,
        Field(
            description="Replay every event with a greater `seq` before going live; the reply says whether all could be."
        ),
    ] = None
    query: Annotated[
        Query | None,
        Field(
            description="Only the resources of a type topic that match this query (protocol 1.1; docs/protocol.md, 8.5): their\nchanges, and word when one enters or leaves the query."
        ),
    ] = None
    snapshot: Annotated[
        StrictBool | None,
        Field(
            description="With `true`, on a type topic (protocol 1.1): the reply carries the first page of what the topic covers now\n(what matches the query, when there is one), exactly as of the reply's `seq`; when `since` is recovered,\nthe replay is sent instead. On a presence topic (1.2): the members present now."
        ),
    ] = None


class SubscribeClientToServer(BaseModel):
    type: Literal["subscribe"]
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
            description="`subscribe`: live events of a topic, optionally replaying those after `since`."
        ),
    ]


Query = TypeAliasType(
    "Query",
    Annotated[
        Union["And", "Or", "Not", Term], Field(description="A condition on resources.")
    ],
)


class And(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    and_: Annotated[
        list[Query],
        Field(
            alias="and",
            description="The conditions, 1 to 32.",
            max_length=32,
            min_length=1,
        ),
    ]


class Or(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    or_: Annotated[
        list[Query],
        Field(
            alias="or",
            description="The conditions, 1 to 32.",
            max_length=32,
            min_length=1,
        ),
    ]


class Not(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    not_: Annotated[
        Query, Field(alias="not", description="The condition that must not hold.")
    ]


Payload.model_rebuild()
