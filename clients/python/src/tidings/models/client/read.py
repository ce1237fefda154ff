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
    StringConstraints,
)
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


Scalar = TypeAliasType(
    "Scalar",
    Annotated[
        StrictBool | StrictFloat | StrictStr | None,
        Field(description="A filter value: a JSON scalar."),
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


ScalarValue1 = TypeAliasType(
    "ScalarValue1",
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
        ScalarValue1 | StrictFloat | StrictBool | None,
        Field(
            description="A scalar operand: a string, a number, `true`, `false` or `null`."
        ),
    ],
)


OrderedValue1 = TypeAliasType(
    "OrderedValue1",
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
        OrderedValue1 | StrictFloat,
        Field(description="An operand that has an order: a string or a number."),
    ],
)


ElementValue1 = TypeAliasType(
    "ElementValue1",
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
        ElementValue1 | StrictFloat | StrictBool,
        Field(
            description="An operand that an array's element or a string can be compared with."
        ),
    ],
)


OrderBy = TypeAliasType(
    "OrderBy",
    Annotated[
        StrictStr,
        Field(
            description="must be a field name, or '-' and a field name for descending order",
            pattern="^-?[A-Za-z_][A-Za-z0-9_]{0,63}$",
        ),
    ],
)


Limit = TypeAliasType(
    "Limit",
    Annotated[
        StrictInt, Field(description="must be an integer from 1 to 100", ge=1, le=100)
    ],
)


FieldName = TypeAliasType(
    "FieldName",
    Annotated[
        StrictStr,
        Field(
            description="must be a field name: a letter or '_' followed by up to 63 letters, digits or '_'",
            pattern="^[A-Za-z_][A-Za-z0-9_]{0,63}$",
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


Order1 = TypeAliasType(
    "Order1",
    Annotated[
        list[OrderBy],
        Field(
            description='Up to four keys: `["status", "-totalAmount"]`.',
            max_length=4,
            min_length=1,
        ),
    ],
)


Order = TypeAliasType(
    "Order",
    Annotated[
        OrderBy | Order1,
        Field(
            description="The order of a list: one key, or (since 1.1) up to four, each deciding the ties of the one before; the id\ndecides the last ties, in the direction of the last key."
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
    resource_type: Annotated[
        ResourceType,
        Field(alias="resourceType", description="The type of resource to read."),
    ]
    id: Annotated[
        ResourceId | None,
        Field(
            description="The resource to read; when present, none of the list fields may be."
        ),
    ] = None
    filter: Annotated[
        dict[
            Annotated[
                str,
                StringConstraints(
                    pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", strict=True
                ),
            ],
            Scalar,
        ]
        | None,
        Field(
            description="List only resources whose top-level `data` fields equal these values (strings, numbers, booleans, null)."
        ),
    ] = None
    query: Annotated[
        Query | None,
        Field(
            description="List only resources that match this query (protocol 1.1; docs/protocol.md, 7.7); with `filter`, both must\nhold."
        ),
    ] = None
    order_by: Annotated[
        Order | None,
        Field(
            alias="orderBy",
            description="The list's order: `createdAt` (the default), `-createdAt`, `updatedAt`, `id`, or a top-level data field;\nsince 1.1 also a list of up to four such keys, each deciding the ties of the one before.",
        ),
    ] = None
    limit: Annotated[
        Limit | None, Field(description="The page size, 1 to 100; 20 when absent.")
    ] = None
    cursor: Annotated[
        StrictStr | None,
        Field(
            description="The `nextCursor` of the previous page; the other list fields must be the same as for that page.",
            max_length=512,
            min_length=1,
        ),
    ] = None
    fields: Annotated[
        list[FieldName] | None,
        Field(
            description="Only these top-level `data` fields in the items (protocol 1.1); all when absent.",
            max_length=64,
            min_length=1,
        ),
    ] = None
    count: Annotated[
        StrictBool | None,
        Field(
            description="With `true`, the reply's `total` counts every resource of the list (all pages), as of the read (protocol\n1.1). It costs the server a pass over what matches."
        ),
    ] = None


class ReadClientToServer(BaseModel):
    type: Literal["read"]
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
            description="`read`: one resource by `id`, or, without `id`, a page of the list the user may see."
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
