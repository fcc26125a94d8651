"""Redfish power driver (HTTP or HTTPS with basic auth, httpx async).

* the system: ``/redfish/v1/Systems/{node_id}``; without node_id, the first
  member of ``/redfish/v1/Systems`` (as MAAS);
* query: the system's ``PowerState`` (On/PoweringOn -> on, Off/PoweringOff -> off);
* on / off: ``ComputerSystem.Reset`` with ResetType ``On`` / ``ForceOff``,
  skipped when the system already is in that state (many BMCs answer an
  error to a redundant reset);
* cycle: ``PowerCycle`` when the BMC lists it among the allowable reset types,
  else ``ForceRestart``; a system that is off is powered ``On``;
* boot device: PATCH ``Boot.BootSourceOverrideTarget`` (Pxe/Hdd), Once or Continuous.

The reset target is taken from the system's ``Actions`` (falling back to the
standard path) and must stay on the BMC's own origin.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from metalplane.rack.power.base import Params, PowerState, prepare, prepare_boot_device
from metalplane.rack.power.errors import PowerBMCError, PowerConfigError, PowerTimeoutError, PowerUnsupportedError
from metalplane.rack.power.httpclient import HttpDriver, json_of, raise_for_status, send
from metalplane.rpc.power_schema import REDFISH, redfish_base_url

SYSTEMS = "/redfish/v1/Systems"
RESET_ACTION = "#ComputerSystem.Reset"

_STATE = {"on": "on", "poweringon": "on", "off": "off", "poweringoff": "off"}


def power_state_of(system: dict[str, Any]) -> PowerState:
    """on/off/unknown from a ComputerSystem resource. Pure."""
    return _STATE.get(str(system.get("PowerState") or "").lower(), "unknown")  # type: ignore[return-value]


def reset_target(system: dict[str, Any], system_path: str) -> str:
    """The Reset action's path (from Actions, else the standard one). Pure."""
    action = (system.get("Actions") or {}).get(RESET_ACTION) or {}
    target = action.get("target") if isinstance(action, dict) else None
    if isinstance(target, str) and target:
        path = urlsplit(target).path if "://" in target else target
        if path.startswith("/redfish/"):
            return path
    return f"{system_path}/Actions/ComputerSystem.Reset"


def allowed_reset_types(system: dict[str, Any]) -> list[str] | None:
    """The BMC's allowable ResetType values, or None when it does not say. Pure."""
    action = (system.get("Actions") or {}).get(RESET_ACTION) or {}
    values = action.get("ResetType@Redfish.AllowableValues") if isinstance(action, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else None


def cycle_reset_type(system: dict[str, Any]) -> str:
    """On when off; PowerCycle when allowed (or unknown), else ForceRestart. Pure."""
    if power_state_of(system) == "off":
        return "On"
    allowed = allowed_reset_types(system)
    if allowed is None or "PowerCycle" in allowed:
        return "PowerCycle"
    return "ForceRestart" if "ForceRestart" in allowed else "GracefulRestart"


class RedfishDriver(HttpDriver):
    power_type = REDFISH

    async def query(self, params: Params, *, timeout: float = 30.0) -> PowerState:
        p = prepare(self, params)
        async with self._deadline(p, timeout):
            _, system = await self._system(p, timeout)
        return power_state_of(system)

    async def on(self, params: Params, *, timeout: float = 30.0) -> str | None:
        return await self._reset_unless(params, "on", "On", timeout)

    async def off(self, params: Params, *, timeout: float = 30.0) -> str | None:
        return await self._reset_unless(params, "off", "ForceOff", timeout)

    async def cycle(self, params: Params, *, timeout: float = 30.0) -> str | None:
        p = prepare(self, params)
        async with self._deadline(p, timeout):
            path, system = await self._system(p, timeout)
            reset = cycle_reset_type(system)
            await self._reset(p, system, path, reset, timeout)
        return "machine was off: powered on" if reset == "On" else None

    async def set_boot_device(
        self, params: Params, device: str = "pxe", *, persistent: bool = False, timeout: float = 30.0
    ) -> None:
        p = prepare_boot_device(self, params, device)
        body = {
            "Boot": {
                "BootSourceOverrideTarget": "Pxe" if device == "pxe" else "Hdd",
                "BootSourceOverrideEnabled": "Continuous" if persistent else "Once",
            }
        }
        async with self._deadline(p, timeout):
            path = await self._system_path(p, timeout)
            response = await self._send(p, "PATCH", path, timeout, json_body=body)
            raise_for_status(response, self._bmc(p), "setting the boot device")

    # -- plumbing -------------------------------------------------------------

    async def _reset_unless(self, params: Params, already: str, reset: str, timeout: float) -> str | None:
        p = prepare(self, params)
        async with self._deadline(p, timeout):
            path, system = await self._system(p, timeout)
            if power_state_of(system) == already:
                return f"already {already}"
            await self._reset(p, system, path, reset, timeout)
        return None

    async def _reset(self, p: Params, system: dict[str, Any], path: str, reset: str, timeout: float) -> None:
        allowed = allowed_reset_types(system)
        if allowed is not None and reset not in allowed:
            raise PowerUnsupportedError(
                self._bmc(p), f"reset type {reset} is not among the BMC's allowable values ({', '.join(allowed)})"
            )
        response = await self._send(p, "POST", reset_target(system, path), timeout, json_body={"ResetType": reset})
        raise_for_status(response, self._bmc(p), f"ComputerSystem.Reset {reset}")

    async def _system_path(self, p: Params, timeout: float) -> str:
        if p.get("node_id"):
            return f"{SYSTEMS}/{quote(p['node_id'], safe='')}"
        response = await self._send(p, "GET", SYSTEMS, timeout)
        raise_for_status(response, self._bmc(p), "listing Systems")
        members = json_of(response, self._bmc(p), "Systems").get("Members") or []
        for member in members:
            ref = member.get("@odata.id") if isinstance(member, dict) else None
            if isinstance(ref, str) and ref.startswith(SYSTEMS + "/"):
                return ref.rstrip("/")
        raise PowerConfigError(self._bmc(p), "the BMC lists no system under /redfish/v1/Systems")

    async def _system(self, p: Params, timeout: float) -> tuple[str, dict[str, Any]]:
        path = await self._system_path(p, timeout)
        response = await self._send(p, "GET", path, timeout)
        if response.status_code == 404:
            raise PowerConfigError(self._bmc(p), f"no system {path} on this BMC (check node_id)")
        raise_for_status(response, self._bmc(p), f"reading {path}")
        return path, json_of(response, self._bmc(p), path)

    async def _send(
        self, p: Params, method: str, path: str, timeout: float, *, json_body: Any = None
    ) -> httpx.Response:
        base = redfish_base_url(p["power_address"])
        auth = (
            httpx.BasicAuth(p.get("power_user") or "", p.get("power_pass") or "")
            if (p.get("power_user") or p.get("power_pass"))
            else None
        )
        return await send(
            self.clients,
            self._bmc(p),
            method,
            base + path,
            verify=p["power_verify_ssl"] == "y",
            timeout=timeout,
            auth=auth,
            json_body=json_body,
            headers={"Accept": "application/json", "OData-Version": "4.0"},
        )

    def _bmc(self, p: Params) -> str:
        return self.bmc_name(p) or "?"

    def _deadline(self, p: Params, timeout: float) -> _Deadline:
        return _Deadline(self._bmc(p), timeout)


class _Deadline:
    """asyncio.timeout for a whole multi-request action, raised as PowerTimeoutError."""

    def __init__(self, bmc: str, timeout: float):
        self.bmc = bmc
        self.timeout = timeout
        self._cm = asyncio.timeout(timeout)

    async def __aenter__(self) -> None:
        await self._cm.__aenter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        try:
            await self._cm.__aexit__(exc_type, exc, tb)  # never suppresses: it raises TimeoutError instead
            return False
        except TimeoutError:
            raise PowerTimeoutError(self.bmc, f"no answer within {self.timeout:g} s") from None


__all__ = ["PowerBMCError", "RedfishDriver", "cycle_reset_type", "power_state_of", "reset_target"]
