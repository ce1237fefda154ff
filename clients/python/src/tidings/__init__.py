"""Tidings for Python: an asyncio client of the Tidings WebSocket protocol v1 and of its HTTP API."""

# The version comes first: the modules below read it to tell the server which client this is.
__version__ = "0.1.0"

from .client import Client, State  # noqa: E402
from .http import HttpClient  # noqa: E402
from .models.server.batch import OperationResult as BatchResult  # noqa: E402
from .models.server.delete import Payload as Deleted  # noqa: E402
from .models.server.read import Resource, ResourceList  # noqa: E402
from .presence import Member, Presence  # noqa: E402
from .protocol import (  # noqa: E402
    PROTOCOL_VERSION,
    Decoded,
    FieldError,
    TidingsError,
    backoff_delay,
    decode_server,
    is_client_message,
    known_error_code,
    should_reconnect,
)
from .subscriptions import Event, Gap, Notification, Stream, Subscription  # noqa: E402

__all__ = [
    "PROTOCOL_VERSION",
    "BatchResult",
    "Client",
    "Decoded",
    "Deleted",
    "Event",
    "FieldError",
    "Gap",
    "HttpClient",
    "Member",
    "Notification",
    "Presence",
    "Resource",
    "ResourceList",
    "State",
    "Stream",
    "Subscription",
    "TidingsError",
    "backoff_delay",
    "decode_server",
    "is_client_message",
    "known_error_code",
    "should_reconnect",
]
