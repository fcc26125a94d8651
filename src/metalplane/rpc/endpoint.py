"""Where a region worker takes RPC connections: the one Endpoint type.

The region stores and sends them (`GET /MAAS/rpc/`, `Register`,
`GetEndpoints`, `SetTargets`); racks connect to them. (ha/'s connection
planner has its own `(region, worker)` key and never sees hosts or ports.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field
from pydantic.dataclasses import dataclass

from metalplane.rpc import wire

Port = Annotated[int, Field(ge=1, le=65535)]


@dataclass(frozen=True)
class Endpoint:
    region: str  # the region's system_id
    worker: Annotated[int, Field(ge=0)]  # worker index within the region
    host: Annotated[str, Field(min_length=1)]
    port: Port

    @property
    def key(self) -> tuple[str, int]:
        """What a rack keeps one link to."""
        return (self.host, self.port)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Endpoint:
        return wire.decode(cls, data)

    def wire(self) -> dict[str, Any]:
        return wire.encode(self)  # type: ignore[no-any-return]
