"""Write Kattle handler webhooks in Python: `HandlerApp`, `ProcessEvent`, `ProcessReply`,
and `RunRequest` to ask for runs on related objects."""

from kattle.api.webhook import EventRequest, ProcessEvent, ProcessReply, RunRequest
from kattle.sdk.app import HandlerApp, HandlerError

__all__ = [
    "EventRequest",
    "HandlerApp",
    "HandlerError",
    "ProcessEvent",
    "ProcessReply",
    "RunRequest",
]
