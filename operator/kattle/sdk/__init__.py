"""Write Kattle handler webhooks in Python: `HandlerApp`, `ProcessEvent`, `ProcessReply`."""

from kattle.api.webhook import EventRequest, ProcessEvent, ProcessReply
from kattle.sdk.app import HandlerApp, HandlerError

__all__ = ["EventRequest", "HandlerApp", "HandlerError", "ProcessEvent", "ProcessReply"]
