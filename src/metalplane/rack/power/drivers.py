"""The registry of power drivers: power type name -> driver.

    registry = DriverRegistry()            # one per rack process
    driver = registry.get("redfish")       # PowerDriver
    registry.describe()                    # describe_power_types() + this rack's missing packages
    await registry.aclose()

Driver classes are imported when first asked for, so listing power types
(:mod:`.schema`) never pulls in httpx or subprocess code.
"""

from __future__ import annotations

import importlib
from typing import Any

from metalplane.rack.power.base import PowerDriver
from metalplane.rpc.power_schema import POWER_TYPES, describe_power_types, get_power_type

#: power type -> "module:Class"
DRIVER_CLASSES: dict[str, str] = {
    "ipmi": "metalplane.rack.power.ipmi:IpmiDriver",
    "redfish": "metalplane.rack.power.redfish:RedfishDriver",
    "webhook": "metalplane.rack.power.webhook:WebhookDriver",
    "manual": "metalplane.rack.power.manual:ManualDriver",
}


def driver_class(power_type: str) -> type[PowerDriver]:
    get_power_type(power_type)  # KeyError naming the known types
    module, _, name = DRIVER_CLASSES[power_type].partition(":")
    return getattr(importlib.import_module(module), name)


class DriverRegistry:
    """Driver instances, made once each (they pool HTTP connections)."""

    def __init__(self, overrides: dict[str, PowerDriver] | None = None):
        self._drivers: dict[str, PowerDriver] = dict(overrides or {})

    def get(self, power_type: str) -> PowerDriver:
        driver = self._drivers.get(power_type)
        if driver is None:
            driver = self._drivers[power_type] = driver_class(power_type)()
        return driver

    def power_types(self) -> list[str]:
        return sorted(set(POWER_TYPES) | set(self._drivers))

    def missing_packages(self) -> dict[str, list[str]]:
        return {name: self.get(name).missing_packages() for name in POWER_TYPES}

    def describe(self) -> list[dict[str, Any]]:
        return describe_power_types(self.missing_packages())

    async def aclose(self) -> None:
        for driver in self._drivers.values():
            await driver.aclose()
