"""Handlers, registered by message class.

    class RackSession:
        @handles(GetDhcpState)
        async def get_dhcp_state(self, message: GetDhcpState) -> DhcpState: ...

    handlers = handler_table(session)        # {GetDhcpState: session.get_dhcp_state, ...}

A side answers exactly the calls of its direction (rpc.messages.messages_for);
`unanswered` and `unexpected` say where a set of classes falls short or goes
beyond, for the tests that hold each side to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from metalplane.rpc.messages import Call, Direction, messages_for

Handler = Callable[[Any], Awaitable[Any]]
Handlers = Mapping[type[Call[Any]], Handler]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_TAG = "__rpc_handles__"


def handles(*messages: type[Call[Any]]) -> Callable[[F], F]:
    """Mark a method as the handler of `messages` (it gets the message, so it can tell them apart)."""

    def mark(func: F) -> F:
        setattr(func, _TAG, messages)
        return func

    return mark


def _marked(cls: type) -> dict[type[Call[Any]], str]:
    found: dict[type[Call[Any]], str] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            for message in getattr(value, _TAG, ()):
                found[message] = attr
    return found


def handler_table(*objects: object) -> dict[type[Call[Any]], Handler]:
    """The marked methods of `objects`, bound, by message class; a message handled twice is a bug."""
    table: dict[type[Call[Any]], Handler] = {}
    for obj in objects:
        for message, attr in _marked(type(obj)).items():
            if message in table:
                raise TypeError(f"{message.name} is handled twice")
            table[message] = getattr(obj, attr)
    return table


def handled_by(*classes: type) -> set[type[Call[Any]]]:
    """The messages the marked methods of `classes` answer."""
    return {m for cls in classes for m in _marked(cls)}


def unanswered(direction: Direction, handled: Iterable[type[Call[Any]]]) -> set[str]:
    return {m.name for m in messages_for(direction) - set(handled)}


def unexpected(direction: Direction, handled: Iterable[type[Call[Any]]]) -> set[str]:
    return {m.name for m in set(handled) - messages_for(direction)}
