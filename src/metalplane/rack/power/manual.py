"""Manual power: there is no BMC; a person presses the button.

query answers ``unknown``; on, off and cycle do nothing and return a note
telling the operator to do it by hand.
"""

from __future__ import annotations

from metalplane.rack.power.base import Params, PowerDriver, PowerState
from metalplane.rpc.power_schema import MANUAL


class ManualDriver(PowerDriver):
    power_type = MANUAL

    async def query(self, params: Params, *, timeout: float = 30.0) -> PowerState:
        return "unknown"

    async def on(self, params: Params, *, timeout: float = 30.0) -> str | None:
        return "manual power type: power the machine on manually"

    async def off(self, params: Params, *, timeout: float = 30.0) -> str | None:
        return "manual power type: power the machine off manually"

    async def cycle(self, params: Params, *, timeout: float = 30.0) -> str | None:
        return "manual power type: power cycle the machine manually"
