"""Webhook power driver: an HTTP service of the operator's does the powering.

* on / off: ``POST power_on_uri`` / ``POST power_off_uri`` (any 2xx is success);
* query: ``GET power_query_uri``; the body is searched with ``power_on_regex``
  then ``power_off_regex`` (MAAS's defaults ``status.*:.*running`` /
  ``status.*:.*stopped``); no match, or no query URI: ``unknown``;
* cycle: off then on (just on when the query says it is off);
* auth: ``power_token`` as a Bearer token, else basic auth with
  ``power_user``/``power_pass`` when a user is given.

The webhook server is named in messages by its origin (scheme://host:port),
never by the full URL, which may carry a token in its query string.
"""

from __future__ import annotations

import re

import httpx

from metalplane.rack.power.base import Params, PowerState, prepare
from metalplane.rack.power.errors import PowerConfigError
from metalplane.rack.power.httpclient import HttpDriver, raise_for_status, send
from metalplane.rpc.power_schema import WEBHOOK, url_origin


def match_power_state(body: str, on_regex: str, off_regex: str) -> PowerState:
    """on/off/unknown from a query answer's body. Pure."""
    if on_regex and re.search(on_regex, body):
        return "on"
    if off_regex and re.search(off_regex, body):
        return "off"
    return "unknown"


class WebhookDriver(HttpDriver):
    power_type = WEBHOOK

    async def query(self, params: Params, *, timeout: float = 30.0) -> PowerState:
        p = prepare(self, params)
        if not p.get("power_query_uri"):
            return "unknown"
        response = await self._call(p, "GET", "power_query_uri", timeout)
        return match_power_state(response.text, p["power_on_regex"], p["power_off_regex"])

    async def on(self, params: Params, *, timeout: float = 30.0) -> str | None:
        await self._call(prepare(self, params), "POST", "power_on_uri", timeout)
        return None

    async def off(self, params: Params, *, timeout: float = 30.0) -> str | None:
        await self._call(prepare(self, params), "POST", "power_off_uri", timeout)
        return None

    async def cycle(self, params: Params, *, timeout: float = 30.0) -> str | None:
        p = prepare(self, params)
        state = await self.query(p, timeout=timeout)
        if state != "off":
            await self._call(p, "POST", "power_off_uri", timeout)
        await self._call(p, "POST", "power_on_uri", timeout)
        return "machine was off: powered on" if state == "off" else None

    async def _call(self, p: Params, method: str, field: str, timeout: float) -> httpx.Response:
        url = p.get(field) or ""
        if not url:
            raise PowerConfigError(self.bmc_name(p), f"{field} is not set")
        bmc = url_origin(url)
        headers = {"Accept": "application/json, text/plain, */*"}
        auth = None
        if p.get("power_token"):
            headers["Authorization"] = f"Bearer {p['power_token']}"
        elif p.get("power_user"):
            auth = httpx.BasicAuth(p["power_user"], p.get("power_pass") or "")
        response = await send(
            self.clients,
            bmc,
            method,
            url,
            verify=p["power_verify_ssl"] == "y",
            timeout=timeout,
            auth=auth,
            headers=headers,
        )
        try:
            raise_for_status(response, bmc, f"{method} {field}")
        except Exception as exc:
            clean = self.scrub(str(exc), p)
            if clean != str(exc) and hasattr(exc, "with_message"):
                raise exc.with_message(clean) from None
            raise
        return response
