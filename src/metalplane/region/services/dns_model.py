"""What the regions' DNS serves, read from the database: the `DnsModel` of region.dns.

MAAS's sources of names, each in its domain (a node's domain, or the default
one when it has none):

* every node (machine, device, controller) with an address: the addresses of
  its interfaces (static, and a controller's own) and the active DHCP leases of
  its MACs, as A/AAAA records of its hostname;
* DNS resources: their addresses (A/AAAA, with `address_ttl`) and their
  records (CNAME, MX, NS, SRV, SSHFP, TXT);
* every subnet's reverse zones by its `rdns_mode`;
* the regions that run named: the NS name's addresses (`nameservers`).

`build` reads; `region.dns.zones` decides. A record BIND could not serve (a
node named against the rules) is left out by `zones.servable`, with the reason,
so one odd row never stops every other change from reaching DNS.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import (
    controller_info,
    dhcp_leases,
    dnsdata,
    dnsresources,
    domains,
    interfaces,
    ip_addresses,
    nodes,
    subnets,
)
from metalplane.region.dns import zones
from metalplane.region.errors import Invalid
from metalplane.region.services import settings
from metalplane.region.services.domain_views import default_domain_id
from metalplane.rpc.nodes import REGION_TYPES

#: MAAS's RDNS_MODE numbers -> region.dns's names.
RDNS_MODES = {0: "disabled", 1: "enabled", 2: "rfc2317"}
#: Stands in for the regions' addresses when none runs named, so a model can still be checked.
PLACEHOLDER_NAMESERVER = ip_address("127.0.0.1")


@dataclass(frozen=True)
class RegionService:
    """A region as racks reach its named and chronyd (port 0: it runs none)."""

    system_id: str
    hostname: str
    address: str
    dns_port: int
    ntp_port: int


async def region_services(conn: AsyncConnection) -> list[RegionService]:
    """Every registered region with an address, ordered by system_id."""
    rows = await conn.execute(
        select(
            *nodes.c["system_id", "hostname"],
            *controller_info.c["address", "dns_port", "ntp_port"],
        )
        .join(controller_info, controller_info.c.node_id == nodes.c.id)
        .where(nodes.c.node_type.in_(REGION_TYPES), controller_info.c.address.isnot(None))
        .order_by(nodes.c.system_id)
    )
    return [RegionService(r.system_id, r.hostname, str(r.address), r.dns_port, r.ntp_port) for r in rows]


async def node_addresses(conn: AsyncConnection) -> dict[int, set[str]]:
    """node id -> its interfaces' addresses and its MACs' active DHCP leases."""
    out: dict[int, set[str]] = {}
    static = await conn.execute(
        select(interfaces.c.node_id, ip_addresses.c.ip)
        .join(ip_addresses, ip_addresses.c.interface_id == interfaces.c.id)
        .where(ip_addresses.c.ip.isnot(None))  # an AUTO link before deployment, a link-up one
    )
    for r in static:
        out.setdefault(r.node_id, set()).add(str(r.ip))
    leased = await conn.execute(
        select(interfaces.c.node_id, dhcp_leases.c.ip)
        .join(dhcp_leases, and_(func.lower(dhcp_leases.c.mac) == func.lower(interfaces.c.mac)))
        .where(dhcp_leases.c.state == "active", dhcp_leases.c.expires.is_(None) | (dhcp_leases.c.expires > func.now()))
    )
    for r in leased:
        out.setdefault(r.node_id, set()).add(str(r.ip))
    return out


def _address_record(name: str, ip: str, ttl: int | None = None) -> zones.Record:
    return zones.Record(name, "A" if ip_address(ip).version == 4 else "AAAA", ip, ttl)


async def build(conn: AsyncConnection, nameservers: list[str] | None = None) -> tuple[zones.DnsModel, list[str]]:
    """The model every region serves, and the records left out of it (with why).
    `nameservers`: the regions' DNS addresses (default: those registered)."""
    if nameservers is None:
        nameservers = [r.address for r in await region_services(conn) if r.dns_port]
    default_id = await default_domain_id(conn)
    rows = list(await conn.execute(select(domains).order_by(domains.c.id)))
    names = {d.id: d.name for d in rows}
    records: dict[int, list[zones.Record]] = {d.id: [] for d in rows}
    addresses = await node_addresses(conn)
    for n in await conn.execute(select(nodes.c.id, nodes.c.hostname, nodes.c.domain_id)):
        domain_id = n.domain_id if n.domain_id in names else default_id
        for ip in sorted(addresses.get(n.id, ())):
            records.setdefault(domain_id, []).append(_address_record(n.hostname.lower(), ip))
    resources = {r.id: r for r in await conn.execute(select(dnsresources))}
    for r in resources.values():
        for ip in r.ips:
            records[r.domain_id].append(_address_record(r.name, str(ip), r.address_ttl))
    for d in await conn.execute(select(dnsdata).order_by(dnsdata.c.id)):
        res = resources[d.dnsresource_id]
        records[res.domain_id].append(zones.Record(res.name, d.rrtype, d.rrdata, d.ttl))
    default_ttl = await settings.get_setting(conn, "default_dns_ttl")
    model = zones.DnsModel(
        domains=tuple(zones.Domain(d.name, tuple(records[d.id]), d.ttl, d.authoritative) for d in rows),
        subnets=tuple(
            zones.Subnet(ip_network(str(s.cidr)), RDNS_MODES.get(s.rdns_mode, "enabled"))
            for s in await conn.execute(select(subnets.c.cidr, subnets.c.rdns_mode).order_by(subnets.c.id))
        ),
        default_domain=names.get(default_id, "maas"),
        default_ttl=int(default_ttl),
        nameservers=tuple(ip_address(a) for a in sorted(set(nameservers), key=lambda a: ip_address(a).packed)),
    )
    return zones.servable(model)


async def zone_names(conn: AsyncConnection, nameservers: list[str]) -> tuple[str, ...]:
    """The zones the regions serve (what racks forward to them); () when no region runs named."""
    if not nameservers:
        return ()
    model, _ = await build(conn, nameservers)
    return zones.zone_names(model)


async def check(conn: AsyncConnection, field: str) -> None:
    """Refuse (400 on `field`) a change that leaves a model no region could serve, e.g. a domain
    named like a subnet's reverse zone: the check runs in the change's own transaction."""
    model, _ = await build(conn)
    if not model.nameservers:
        model = zones.DnsModel(
            model.domains, model.subnets, model.default_domain, model.default_ttl, (PLACEHOLDER_NAMESERVER,)
        )
    try:
        zones.zones(model)
    except zones.InvalidDnsModel as exc:
        raise Invalid({field: [e.split(": ", 1)[-1] for e in exc.errors]}) from None
