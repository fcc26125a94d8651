"""regioncontrollers/ and rackcontrollers/ (a region+rack host appears in both)."""

from __future__ import annotations

import asyncio

from metalplane.ha import balance
from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import controller_overview as overview
from metalplane.region.services import controllers as svc
from metalplane.region.services import network, racks, rpc

region_controllers = Handler("RegionControllersHandler", "regioncontrollers/", "Manage region controllers.")
region_controller = Handler("RegionControllerHandler", "regioncontrollers/{system_id}/",
                            "Manage an individual region controller.")
rack_controllers = Handler("RackControllersHandler", "rackcontrollers/", "Manage rack controllers.")
rack_controller = Handler("RackControllerHandler", "rackcontrollers/{system_id}/",
                          "Manage an individual rack controller.")

READ_DOC = """List Nodes visible to the user, optionally filtered by criteria.

:param hostname: An optional hostname. Only nodes relating to the node with the matching hostname will be returned. This can be specified multiple times to see multiple nodes.
:type hostname: unicode
:param id: An optional list of system ids.  Only nodes relating to the nodes with matching system ids will be returned.
:type id: unicode
"""


async def render_regions(conn, rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        processes = await svc.live_processes(conn, row["id"])
        out.append(render.controller(row, "regioncontrollers", extra={
            "processes": [
                {"pid": p.pid, "worker_index": p.worker_index, "rpc_port": p.rpc_port,
                 "heartbeat": p.updated.isoformat()}
                for p in processes
            ],
        }))
    return out


async def render_racks(ctx: Ctx, conn, rows: list[dict]) -> list[dict]:
    ids = [r["id"] for r in rows]
    service_sets = await overview.rack_service_sets(conn, ids, ctx.app_state.config.rpc_connections_per_rack)
    interfaces = await racks.interfaces_of(conn, ids)
    by_id = {v["id"]: v for v in await network.list_vlans(conn)}
    subnets = {s["id"]: s for s in await network.list_subnets(conn)}
    out = []
    for row in rows:
        ifaces = [render.interface(i, row["system_id"], by_id, subnets) for i in interfaces.get(row["id"], [])]
        out.append(render.controller(row, "rackcontrollers", extra={
            "service_set": [s.wire() for s in service_sets[row["id"]]],
            "interface_set": ifaces,
            "ip_addresses": [link["ip_address"] for i in ifaces for link in i["links"]],
        }))
    return out


async def list_regions(ctx: Ctx) -> list:
    async with ctx.tx() as conn:
        rows = await svc.list_controllers(conn, svc.REGION_TYPES, ctx.params.get_list("id"),
                                          ctx.params.get_list("hostname"))
        return await render_regions(conn, rows)


async def list_racks(ctx: Ctx) -> list:
    async with ctx.tx() as conn:
        rows = await svc.list_controllers(conn, svc.RACK_TYPES, ctx.params.get_list("id"),
                                          ctx.params.get_list("hostname"))
        return await render_racks(ctx, conn, rows)


list_regions.__doc__ = list_racks.__doc__ = READ_DOC
region_controllers.read(list_regions)
rack_controllers.read(list_racks)


@region_controller.read
async def read_region(ctx: Ctx) -> dict:
    """Read a specific region controller."""
    async with ctx.tx() as conn:
        row = await svc.get_controller(conn, svc.REGION_TYPES, ctx.path["system_id"])
        return (await render_regions(conn, [row]))[0]


@rack_controller.read
async def read_rack(ctx: Ctx) -> dict:
    """Read a specific rack controller."""
    async with ctx.tx() as conn:
        row = await svc.get_controller(conn, svc.RACK_TYPES, ctx.path["system_id"])
        return (await render_racks(ctx, conn, [row]))[0]


@rack_controller.action("DELETE", admin=True)
async def delete_rack(ctx: Ctx) -> None:
    """Delete a specific rack controller.

    Refused while the rack is the primary or secondary DHCP rack of a VLAN with
    DHCP on, unless force is given: then DHCP is turned off on the VLANs where
    it is primary, and it is removed as secondary elsewhere. A region+rack host
    stays registered as a region. The rack software is told to stop; if it
    still runs later (e.g. it was unreachable), it registers again.

    :param force: Delete even while the rack serves DHCP.
    :type force: boolean
    """
    config = ctx.app_state.config
    async with ctx.tx() as conn:
        await racks.remove_rack(conn, ctx.path["system_id"], bool(ctx.params.bool("force", False)),
                                config.rpc_connections_per_rack, config.balance_threshold)


async def _reachable(ctx: Ctx, system_ids: list[str]) -> dict[str, bool]:
    """Ping every rack over RPC from this region, at once."""
    server = ctx.app_state.rpc

    async def ping(system_id: str) -> bool:
        try:
            return await server.call_rack(system_id, "Ping", timeout=2) == "pong"
        except Exception:
            return False

    results = await asyncio.gather(*(ping(s) for s in system_ids))
    return dict(zip(system_ids, results))


@rack_controllers.action("GET", "connections")
async def connections(ctx: Ctx) -> dict:
    """Show how rack RPC connections are spread over region workers.

    Returns per-worker and per-region connection counts, each rack's
    connections, the max/mean ratio over workers and the balance threshold.
    With check=true this region also pings every rack over RPC.

    :param check: Ping every rack from this region and report which answer.
    :type check: boolean
    """
    async with ctx.tx() as conn:
        endpoints = await rpc.live_endpoints(conn)
        current = await rpc.connections_by_rack(conn)
        all_racks = list(await rpc.rack_ids(conn)) if ctx.params.bool("check", False) else []
    names = {e.region: e.region_hostname for e in endpoints}
    spread = balance.spread({k: frozenset(v) for k, v in current.items()}, [e.key for e in endpoints])
    loads = {(e.region, e.worker): spread.endpoint_loads.get(e.key, 0) for e in endpoints}
    return {
        "workers": [
            {"region": e.region, "hostname": names[e.region], "worker": e.worker, "host": e.host, "port": e.port,
             "connections": loads[(e.region, e.worker)]}
            for e in endpoints
        ],
        "regions": [
            {"region": region, "hostname": hostname,
             "connections": sum(n for (r, _), n in loads.items() if r == region)}
            for region, hostname in sorted(names.items())
        ],
        "racks": {rack: sorted(f"{names.get(e.region, e.region)}:{e.worker}" for e in eps)
                  for rack, eps in sorted(current.items())},
        "max_over_mean": spread.max_over_mean,
        "threshold": ctx.app_state.config.balance_threshold,
        **({"reachable": await _reachable(ctx, all_racks)} if all_racks else {}),
    }
