"""Static routes between subnets (MAAS's static-routes/): stored with MAAS's rules.

Deployed machines would get them in their network configuration; nothing
reads them yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import static_routes, subnets
from metalplane.region.errors import FieldErrors, Invalid, PermissionDenied, RegionError, raise_if
from metalplane.region.services import lookups, network
from metalplane.region.services.rows import Row, delete_row, insert_unique, one, rows, update_unique
from metalplane.region.services.users import User

METRIC_MAX = 2**31 - 1
DUPLICATE = "Static route with this Source, Destination and Gateway IP already exists."
NO_CHOICE = "Select a valid choice. That choice is not one of the available choices."


def check_route(source: Row, destination: Row, gateway_ip: str | None, metric: int | None) -> FieldErrors:
    """MAAS's StaticRouteForm and StaticRoute.clean, on resolved subnets."""
    errors: FieldErrors = {}
    if not gateway_ip:
        return {"gateway_ip": ["This field is required."]}
    try:
        gateway = ip_address(gateway_ip.strip())
    except ValueError:
        return {"gateway_ip": ["Enter a valid IPv4 or IPv6 address."]}
    if getattr(gateway, "scope_id", None):  # fe80::1%eth0: PostgreSQL's inet has no zone
        return {"gateway_ip": ["Enter a valid IPv4 or IPv6 address."]}
    source_net = ip_network(str(source["cidr"]))
    if gateway.version != source_net.version or gateway not in source_net:
        errors["gateway_ip"] = [f"Enter an IP address in {source_net}."]
    if metric is not None and not 0 <= metric <= METRIC_MAX:
        errors["metric"] = ["Ensure this value is greater than or equal to 0."]
    if source["id"] == destination["id"]:
        errors.setdefault("__all__", []).append("source and destination cannot be the same subnet.")
    elif source_net.version != ip_network(str(destination["cidr"])).version:
        errors.setdefault("__all__", []).append("source and destination must be the same IP version.")
    return errors


async def _subnet_field(conn: AsyncConnection, field: str, spec: str | None) -> Row:
    if spec is None or not spec.strip():
        raise Invalid.field(field, "This field is required.")
    try:
        return await lookups.subnet(conn, spec)
    except RegionError:
        raise Invalid.field(field, NO_CHOICE) from None


@dataclass(frozen=True)
class Routes:
    """Routes as shown: each with its source and destination subnets (and their VLANs)."""

    routes: list[Row]
    subnets: dict[int, Row]
    vlans: dict[int, Row]


async def _shown(conn: AsyncConnection, shown: list[Row]) -> Routes:
    ids = {r["source_id"] for r in shown} | {r["destination_id"] for r in shown}
    found = rows(await conn.execute(select(subnets).where(subnets.c.id.in_(ids)))) if ids else []
    return Routes(shown, {s["id"]: s for s in found}, {v["id"]: v for v in await network.list_vlans(conn)})


async def get_route(conn: AsyncConnection, route_id: int) -> Row:
    return one(await conn.execute(select(static_routes).where(static_routes.c.id == route_id)), "StaticRoute")


async def show_routes(conn: AsyncConnection, route_id: int | None = None) -> Routes:
    if route_id is not None:
        return await _shown(conn, [await get_route(conn, route_id)])
    return await _shown(conn, rows(await conn.execute(select(static_routes).order_by(static_routes.c.id))))


async def _values(conn: AsyncConnection, fields: dict[str, Any], current: Row | None) -> dict[str, Any]:
    source_spec = fields.get("source", None if current is None else str(current["source_id"]))
    destination_spec = fields.get("destination", None if current is None else str(current["destination_id"]))
    source = await _subnet_field(conn, "source", source_spec)
    destination = await _subnet_field(conn, "destination", destination_spec)
    gateway = fields.get("gateway_ip", None if current is None else str(current["gateway_ip"]))
    metric = fields.get("metric") if fields.get("metric") is not None else (0 if current is None else current["metric"])
    raise_if(check_route(source, destination, gateway, metric))
    return {
        "source_id": source["id"],
        "destination_id": destination["id"],
        "gateway_ip": str(ip_address((gateway or "").strip())),
        "metric": metric,
    }


async def create_route(conn: AsyncConnection, fields: dict[str, Any]) -> Routes:
    values = await _values(conn, fields, None)
    route_id = await insert_unique(conn, static_routes, "__all__", DUPLICATE, **values)
    return await show_routes(conn, route_id)


def _may_edit(by: User) -> None:
    """MAAS checks NodePermission.admin on the route: a 403 without a message."""
    if not by.is_superuser:
        raise PermissionDenied("")


async def update_route(conn: AsyncConnection, by: User, route_id: int, fields: dict[str, Any]) -> Routes:
    current = await get_route(conn, route_id)
    _may_edit(by)
    values = await _values(conn, fields, current)
    await update_unique(conn, static_routes, route_id, "__all__", DUPLICATE, **values)
    return await show_routes(conn, route_id)


async def delete_route(conn: AsyncConnection, by: User, route_id: int) -> None:
    await get_route(conn, route_id)
    _may_edit(by)
    await delete_row(conn, static_routes, route_id)
