"""`machines allocate`: take a Ready machine that fits the caller's constraints.

MAAS's AcquireNodeForm: the constraints are `machines read`'s filters (pure, in
node_filters) plus `name` (hostname or FQDN), `system_id` and the labeled
`interfaces` map (interface_constraints). Candidates are Ready, unlocked and nobody
else's; the cheapest wins (cpu_count + memory/1024, as MAAS orders them).

Two allocations never get one machine: each takes its pick with a conditional
UPDATE (still Ready, still unowned); PostgreSQL makes the second one wait for the
first and then see the machine gone, and it moves on to its next candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import nodes
from metalplane.region.errors import Conflict, Invalid
from metalplane.region.services import events, interface_constraints, machines, node_filters
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.node_status import Status
from metalplane.region.services.rows import Row, first_row
from metalplane.region.services.users import User

# AcquireNodeForm's constraints (node_constraint_filter_forms.py), and what each is
# called among `machines read`'s filters.
CONSTRAINTS = {
    "name": "hostname",
    "system_id": "id",
    "arch": "arch",
    "cpu_count": "cpu_count",
    "mem": "mem",
    "tags": "tags",
    "not_tags": "not_tags",
    "zone": "zone",
    "not_in_zone": "not_in_zone",
    "pool": "pool",
    "not_in_pool": "not_in_pool",
    "subnets": "subnets",
    "not_subnets": "not_subnets",
    "vlans": "vlans",
    "not_vlans": "not_vlans",
    "fabrics": "fabrics",
    "not_fabrics": "not_fabrics",
    "fabric_classes": "fabric_classes",
    "not_fabric_classes": "not_fabric_classes",
    "link_speed": "link_speed",
    "pod": "pod",
    "not_pod": "not_pod",
    "pod_type": "pod_type",
    "not_pod_type": "not_pod_type",
    "deployment_target": "deployment_target",
    "not_deployment_target": "not_deployment_target",
    "storage": "storage",
    "devices": "devices",
}
# Options, not constraints (MAAS's IGNORED_FIELDS).
OPTIONS = ("op", "agent_name", "comment", "bridge_all", "bridge_type", "bridge_stp", "bridge_fd", "dry_run", "verbose")
SINGLE = ("zone", "pool", "cpu_count", "mem", "link_speed", "pod", "pod_type", "interfaces", "storage", "devices")


@dataclass(frozen=True)
class Allocated:
    view: nodes_service.NodesView
    constraints_by_type: dict[str, Any] = field(default_factory=dict)


def describe(given: dict[str, list[str]]) -> str:
    """MAAS's describe_constraints: `name=value` per constraint given, alphabetically;
    several values comma-joined; numbers as the float MAAS's form cleans them to."""
    parts = []
    for name in sorted(given):
        values = [v for v in given[name] if v != ""]
        if name in OPTIONS or not values:
            continue
        if name in ("cpu_count", "mem"):
            try:
                values = [str(float(values[-1]))]
            except ValueError:
                values = [values[-1]]
        elif name in SINGLE:
            values = values[-1:]
        parts.append(f"{name}={','.join(values)}")
    return " ".join(parts)


def no_match_message(given: dict[str, list[str]]) -> str:
    """MAAS's 409 texts for an allocation nothing satisfies."""
    described = describe(given)
    if not described:
        return "No machine available."
    if given.get("system_id"):
        return f"No machine with system ID {given['system_id'][-1]} available."
    input_constraints = [(k, list(v)) for k, v in given.items() if k != "op"]
    return f'No available machine matches constraints: {input_constraints} (resolved to "{described}")'


def _filters(given: dict[str, list[str]]) -> tuple[dict[str, list[str]], str | None]:
    """The request's constraints as `machines read` filters, and the interfaces map;
    400 "No such constraint." for anything else."""
    errors: dict[str, list[str]] = {}
    filters: dict[str, list[str]] = {}
    for name, values in given.items():
        if name in OPTIONS:
            continue
        if name == "interfaces":
            continue
        if name not in CONSTRAINTS:
            errors[name] = ["No such constraint."]
            continue
        if name == "name":
            continue  # matched against each machine's FQDN (name_matches)
        filters[CONSTRAINTS[name]] = values
    if errors:
        raise Invalid(errors)
    interfaces = given.get("interfaces")
    return filters, (interfaces[-1] if interfaces and interfaces[-1].strip() else None)


def name_matches(names: list[str], hostname: str, domain: str) -> bool:
    """MAAS's `name` constraint: any of `names`, each a hostname or an FQDN (hostname and
    domain both equal); no names, no constraint."""
    wanted = [n.strip() for n in names if n.strip()]
    return not wanted or any(
        host == hostname and (not dot or rest == domain) for host, dot, rest in (n.partition(".") for n in wanted)
    )


def _interface_facts(view: nodes_service.NodesView, node: Row) -> list[dict[str, Any]]:
    out = []
    for i in view.interfaces.get(node["id"], []):
        vlan = view.vlans.get(i["vlan_id"]) if i["vlan_id"] is not None else None
        fabric = view.fabrics.get(vlan["fabric_id"]) if vlan else None
        subnets = [view.subnets[x["subnet_id"]] for x in i["links"] if x["subnet_id"] in view.subnets]
        out.append(
            {
                "id": i["id"],
                "name": i["name"],
                "type": i["type"],
                "vlan_id": i["vlan_id"],
                "vid": vlan["vid"] if vlan else None,
                "fabric": vlan["fabric_name"] if vlan else None,
                "fabric_class": fabric["class_type"] if fabric else None,
                "space": vlan["space_name"] if vlan else None,
                "tags": list(i["tags"]),
                "link_speed": i["link_speed"],
                "subnets": [{"id": s["id"], "name": s["name"], "cidr": str(s["cidr"])} for s in subnets],
                "ips": [x["ip"] for x in i["links"] if x["ip"]],
            }
        )
    return out


async def candidates(
    conn: AsyncConnection, given: dict[str, list[str]], user: User
) -> tuple[nodes_service.NodesView, list[Row], dict[int, dict[str, list[int]]]]:
    """The machines that fit, cheapest first, and what each matched of `interfaces`."""
    filters, interfaces_spec = _filters(given)
    label_map: interface_constraints.LabelMap = {}
    if interfaces_spec is not None:
        try:
            label_map = interface_constraints.parse(interfaces_spec)
        except ValueError as exc:
            raise Invalid.field("interfaces", str(exc)) from None
    constraints = node_filters.parse(filters, await machines.filter_known(conn))
    query = nodes_service.node_select(machines.MACHINE_TYPES).where(
        nodes.c.status == Status.READY, nodes.c.locked.is_(False)
    )
    if not user.is_superuser:
        query = query.where((nodes.c.owner_id.is_(None)) | (nodes.c.owner_id == user.id))
    view = await nodes_service.show(conn, [dict(r._mapping) for r in await conn.execute(query)])
    fitting: list[Row] = []
    matched: dict[int, dict[str, list[int]]] = {}
    names = given.get("name", [])
    for n in view.nodes:
        facts = view.facts(n)
        if not node_filters.matches(constraints, facts) or not name_matches(names, n["hostname"], facts["domain"]):
            continue
        if label_map:
            found = interface_constraints.match(label_map, _interface_facts(view, n))
            if found is None:
                continue
            matched[n["id"]] = found
        fitting.append(n)
    fitting.sort(key=lambda n: (n["cpu_count"] + n["memory"] / 1024, n["id"]))
    return view, fitting, matched


async def allocate(
    conn: AsyncConnection,
    user: User,
    given: dict[str, list[str]],
    agent_name: str = "",
    comment: str = "",
    dry_run: bool = False,
) -> Allocated:
    """The cheapest fitting machine, now the caller's (Allocated); MAAS's 409 when none."""
    _view, fitting, matched = await candidates(conn, given, user)
    for n in fitting:
        if dry_run:
            chosen = n
        else:
            taken = await first_row(
                conn,
                update(nodes)
                .where(
                    and_(
                        nodes.c.id == n["id"],
                        nodes.c.status == Status.READY,
                        nodes.c.locked.is_(False),
                        (nodes.c.owner_id.is_(None)) | (nodes.c.owner_id == user.id),
                    )
                )
                .values(status=Status.ALLOCATED, owner_id=user.id, agent_name=agent_name, updated=func.now())
                .returning(nodes.c.id),
            )
            if taken is None:
                continue  # another allocation took it first
            await record_acquired(conn, n, user, comment)
            chosen = await machines.get_machine(conn, n["system_id"])
        shown = await nodes_service.show(conn, [chosen])
        by_type = {"interfaces": matched[n["id"]]} if n["id"] in matched else {}
        return Allocated(shown, by_type)
    raise Conflict(no_match_message(given))


async def record_acquired(conn: AsyncConnection, machine: Row, user: User, comment: str = "") -> None:
    await events.record(conn, machine, "REQUEST_NODE_ACQUIRE", comment, action="acquire", username=user.username)
    await events.status_changed(conn, machine, machine["status"], Status.ALLOCATED, machines.STATUS_NAMES)


async def list_allocated(conn: AsyncConnection, user: User, system_ids: list[str]) -> nodes_service.NodesView:
    """The caller's Allocated machines (optionally only these ids)."""
    query = nodes_service.node_select(machines.MACHINE_TYPES).where(
        nodes.c.status == Status.ALLOCATED, nodes.c.owner_id == user.id
    )
    if system_ids:
        query = query.where(nodes.c.system_id.in_(system_ids))
    return await nodes_service.show(conn, [dict(r._mapping) for r in await conn.execute(query)])


async def take(conn: AsyncConnection, machine: Row, user: User, agent_name: str = "", comment: str = "") -> Row:
    """`deploy` of a Ready machine: allocate it to the caller first (MAAS's 409 when it is
    someone else's). `machine` is locked by the caller."""
    if machine["owner_id"] is not None and machine["owner_id"] != user.id:
        raise Conflict("Can't allocate a machine belonging to another user.")
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == machine["id"])
        .values(status=Status.ALLOCATED, owner_id=user.id, agent_name=agent_name, updated=func.now())
    )
    await record_acquired(conn, machine, user, comment)
    return await machines.get_machine(conn, machine["system_id"], lock=True)


async def owned_ids(conn: AsyncConnection, user: User) -> list[int]:
    return list((await conn.execute(select(nodes.c.id).where(nodes.c.owner_id == user.id))).scalars())
