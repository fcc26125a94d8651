"""JSON shapes of MAAS 2.0 objects, built from what services return (rows and views).

Nothing here queries: a service composes everything a response shows (e.g.
network.Vlans, racks.Racks) and these functions only shape it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any

from metalplane.region.api.framework import API_PREFIX
from metalplane.region.api.render_controllers import controller_neutral
from metalplane.region.services.controller_ops import power_type_of as controller_power_type
from metalplane.region.services.controllers import RegionView
from metalplane.region.services.discoveries import Discovery
from metalplane.region.services.dnsresources import Resource
from metalplane.region.services.domain_views import DomainView
from metalplane.region.services.network import Fabrics, Vlans
from metalplane.region.services.nodes import AUTO, DHCP, DISCOVERED, STICKY, USER_RESERVED
from metalplane.region.services.racks import Racks
from metalplane.region.services.spaces import Spaces
from metalplane.region.services.subnets import Ranges, Subnets
from metalplane.region.services.users import User
from metalplane.rpc.nodes import NodeType

Row = dict[str, Any]
UNDEFINED_SPACE = "undefined"


def uri(path: str) -> str:
    return API_PREFIX + path


def columns(row: Row, *names: str) -> Row:
    """The fields a response shows just as the row stores them, in this order."""
    return {name: row[name] for name in names}


def lists(row: Row, *names: str) -> Row:
    """Array columns, as JSON lists."""
    return {name: list(row[name]) for name in names}


def vlan_name(vlan: Row) -> str | None:
    if vlan["name"]:
        return vlan["name"]
    return "untagged" if vlan["is_default"] else None


def vlan(v: Row, by_id: dict[int, Row] | None = None, extra: Row | None = None) -> Row:
    relay = (by_id or {}).get(v["relay_vlan_id"]) if v["relay_vlan_id"] else None
    return {
        "id": v["id"],
        "name": vlan_name(v),
        "vid": v["vid"],
        "fabric": v["fabric_name"],
        **columns(v, "fabric_id", "mtu", "description", "primary_rack", "secondary_rack", "dhcp_on", "external_dhcp"),
        "relay_vlan": vlan(relay) if relay else None,
        "space": v["space_name"] or UNDEFINED_SPACE,
        **(extra or {}),
        "resource_uri": uri(f"vlans/{v['id']}/"),
    }


def fabric(f: Row, vlans: list[Row], by_id: dict[int, Row]) -> Row:
    return {
        **columns(f, "id", "name", "class_type", "description"),
        "vlans": [vlan(v, by_id) for v in vlans if v["fabric_id"] == f["id"]],
        "resource_uri": uri(f"fabrics/{f['id']}/"),
    }


def subnet(s: Row, by_id: dict[int, Row]) -> Row:
    v = by_id[s["vlan_id"]]
    return {
        **columns(s, "id", "name", "description"),
        "vlan": vlan(v, by_id),
        "cidr": str(s["cidr"]),
        "gateway_ip": str(s["gateway_ip"]) if s["gateway_ip"] is not None else None,
        "dns_servers": list(s["dns_servers"]),
        **columns(s, "rdns_mode", "allow_dns", "allow_proxy", "active_discovery", "managed"),
        "disabled_boot_architectures": list(s["disabled_boot_architectures"]),
        "space": v["space_name"] or UNDEFINED_SPACE,
        "resource_uri": uri(f"subnets/{s['id']}/"),
    }


def user(u: User) -> Row:
    return {
        "username": u.username,
        "email": u.email,
        "is_local": True,
        "is_superuser": u.is_superuser,
        "resource_uri": uri(f"users/{u.username}/"),
    }


def iprange(r: Row, subnet_json: Row, owner: User | None) -> Row:
    return {
        **columns(r, "id", "type"),
        "start_ip": str(r["start_ip"]),
        "end_ip": str(r["end_ip"]),
        "comment": r["comment"] or "",
        "user": user(owner) if owner else None,
        "subnet": subnet_json,
        "resource_uri": uri(f"ipranges/{r['id']}/"),
    }


def zone(z: Row) -> Row:
    return {**columns(z, "id", "name", "description"), "resource_uri": uri(f"zones/{z['name']}/")}


def space(s: Row, vlans: list[Row], subnets: list[Row], by_id: dict[int, Row]) -> Row:
    """A space; id -1 is MAAS's "undefined" space: the VLANs without one."""
    undefined = s["id"] == -1
    mine = [v for v in vlans if v["space_id"] == (None if undefined else s["id"])]
    ids = {v["id"] for v in mine}
    return {
        **columns(s, "id", "name", "description"),
        "vlans": [vlan(v, by_id) for v in mine],
        "subnets": [subnet(sn, by_id) for sn in subnets if sn["vlan_id"] in ids],
        "resource_uri": uri(f"spaces/{UNDEFINED_SPACE if undefined else s['id']}/"),
    }


DEFAULT_DOMAIN = {
    "authoritative": True,
    "ttl": None,
    "id": 0,
    "resource_record_count": 0,
    "is_default": True,
    "name": "maas",
    "resource_uri": uri("domains/0/"),
}


def when(moment: datetime) -> str:
    """Django's JSON dates, as MAAS sends them: ISO 8601, milliseconds, UTC as "Z"."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def domain(d: DomainView) -> Row:
    r = d.row
    return {
        **columns(r, "id", "name", "ttl", "authoritative"),
        "resource_record_count": d.resource_record_count,
        "is_default": d.is_default,
        "resource_uri": uri(f"domains/{r['id']}/"),
    }


def dnsresource_record(rec: Row) -> Row:
    return {
        **columns(rec, "id", "fqdn", "ttl", "rrtype", "rrdata"),
        "resource_uri": uri(f"dnsresourcerecords/{rec['id']}/"),
    }


def dnsresource(r: Resource) -> Row:
    """A DNS resource; a node's implied records (id -1, `all=true`) carry their data inline."""
    implied = r.ips is None
    return {
        "id": r.id,
        "fqdn": r.fqdn,
        "address_ttl": r.address_ttl,
        "ip_addresses": None
        if implied
        else [{"ip": ip, "alloc_type": USER_RESERVED, "alloc_type_name": "User reserved"} for ip in r.ips or []],
        "resource_records": r.records if implied else [dnsresource_record(rec) for rec in r.records],
        "resource_uri": uri(f"dnsresources/{r.id}/"),
    }


def discovery(d: Discovery) -> Row:
    return {
        "discovery_id": d.discovery_id,
        "ip": d.ip,
        "mac_address": d.mac,
        "mac_organization": None,
        "last_seen": when(d.last_seen),
        "hostname": None,
        "fabric_name": d.fabric_name,
        "vid": d.vid,
        "observer": {
            "system_id": d.rack_system_id,
            "hostname": d.rack_hostname,
            "interface_id": d.interface_id,
            "interface_name": d.interface_name,
        },
        "resource_uri": uri(f"discovery/{d.discovery_id}/"),
    }


def node_domain(view: DomainView | None) -> Row:
    """A node's domain; DEFAULT_DOMAIN when the service did not say (its row is id 0, "maas")."""
    return domain(view) if view is not None else DEFAULT_DOMAIN


def controller(n: Row, collection: str, extra: Row | None = None, in_domain: DomainView | None = None) -> Row:
    """A region or rack controller, with MAAS's node fields."""
    zone_json = zone({"id": n["zone_ref"], "name": n["zone_name"], "description": n["zone_description"]})
    dom = node_domain(in_domain)
    return {
        **controller_neutral(),
        "system_id": n["system_id"],
        "hostname": n["hostname"],
        "domain": dom,
        "fqdn": f"{n['hostname']}.{dom['name']}",
        "description": n["description"],
        "architecture": None,
        "cpu_count": 0,
        "memory": 0,
        "swap_size": None,
        "osystem": "",
        "distro_series": "",
        "power_type": controller_power_type(n),
        "power_state": "unknown",
        "ip_addresses": [],
        "interface_set": [],
        "zone": zone_json,
        "status_action": None,
        "node_type": n["node_type"],
        "node_type_name": NodeType(n["node_type"]).label,
        "version": n["version"] or None,
        "tag_names": [],
        **(extra or {}),
        "resource_uri": uri(f"{collection}/{n['system_id']}/"),
    }


def link_mode(link: Row) -> str:
    """MAAS's link mode from the address's alloc_type (a sticky link without an address is link_up)."""
    if link["alloc_type"] == AUTO:
        return "auto"
    if link["alloc_type"] == DHCP:
        return "dhcp"
    if link["alloc_type"] in (STICKY, USER_RESERVED) and link["ip"] is None:
        return "link_up"
    return "static"


def _subnet_holding(subnets_by_id: dict[int, Row], ip: str) -> Row | None:
    address = ip_address(ip)
    for s in subnets_by_id.values():
        network = ip_network(str(s["cidr"]))
        if address.version == network.version and address in network:
            return s
    return None


def interface(
    i: Row, system_id: str, vlans_by_id: dict[int, Row], subnets_by_id: dict[int, Row], leased: list[str] | None = None
) -> Row:
    """MAAS's interface (InterfaceHandler's 22 fields + resource_uri): the one shape of
    interfaces read, a node's interface_set and boot_interface, for every node type.
    `i` carries its links ([{id, alloc_type, ip, subnet_id}]); `leased`: addresses DHCP
    gave its MAC (MAAS's `discovered`)."""
    vlan_row = vlans_by_id.get(i["vlan_id"]) if i["vlan_id"] else None
    links = []
    for item in i["links"]:
        if item["alloc_type"] == DISCOVERED:
            continue
        entry: Row = {"id": item["id"], "mode": link_mode(item)}
        if item["subnet_id"] in subnets_by_id:
            entry["subnet"] = subnet(subnets_by_id[item["subnet_id"]], vlans_by_id)
        if item["ip"] is not None:
            entry["ip_address"] = item["ip"]
        links.append(entry)
    discovered = []
    for ip in leased or []:
        holder = _subnet_holding(subnets_by_id, ip)
        discovered.append({"subnet": subnet(holder, vlans_by_id) if holder else None, "ip_address": ip})
    return {
        "system_id": system_id,
        "id": i["id"],
        "name": i["name"],
        "type": i["type"],
        "vlan": vlan(vlan_row, vlans_by_id) if vlan_row else None,
        "mac_address": i["mac"],
        "parents": [],
        "children": [],
        "tags": list(i.get("tags") or []),
        "enabled": i["enabled"],
        "links": links,
        "params": i.get("params") or {},
        "discovered": discovered or None,
        "effective_mtu": i.get("mtu") or (vlan_row["mtu"] if vlan_row else 1500),
        "vendor": i.get("vendor"),
        "product": i.get("product"),
        "firmware_version": i.get("firmware_version"),
        "link_connected": i.get("link_connected", True),
        "interface_speed": i.get("interface_speed", 0),
        "link_speed": i.get("link_speed", 0),
        "numa_node": None,
        "sriov_max_vf": 0,
        "resource_uri": uri(f"nodes/{system_id}/interfaces/{i['id']}/"),
    }


def subnet_addresses(known: list[Row], found: list[Row]) -> list[Row]:
    """MAAS's subnet ip_addresses entries: node addresses, then DHCP leases."""
    out: list[Row] = [
        {
            "ip": str(a["ip"]),
            "alloc_type": a["alloc_type"],
            "alloc_type_name": "Sticky",
            "created": a["created"].isoformat(),
            "updated": a["updated"].isoformat(),
            "user": None,
            "mac_address": a["mac"],
            "node_summary": {
                "system_id": a["system_id"],
                "node_type": a["node_type"],
                "hostname": a["hostname"],
                "fqdn": f"{a['hostname']}.{a['domain_name']}",
                "via": None,
            },
        }
        for a in known
    ]
    out += [
        {
            "ip": str(lease["ip"]),
            "alloc_type": DISCOVERED,
            "alloc_type_name": "Discovered",
            "created": lease["created"].isoformat(),
            "updated": lease["updated"].isoformat(),
            "user": None,
            "mac_address": lease["mac"],
            "hostname": lease["hostname"] or None,
            "lease_expires": lease["expires"].isoformat() if lease["expires"] else None,
        }
        for lease in found
    ]
    return out


# -- views: what one response shows --------------------------------------------------


def fabrics(view: Fabrics) -> list[Row]:
    by_id = {v["id"]: v for v in view.vlans}
    return [fabric(f, view.vlans, by_id) for f in view.fabrics]


def vlans(view: Vlans) -> list[Row]:
    """VLANs with the rack the seeds say appears as candidate secondary."""
    return [vlan(v, view.by_id, extra={"candidate_secondary_rack": view.candidates.get(v["id"])}) for v in view.vlans]


def subnets(view: Subnets) -> list[Row]:
    return [subnet(s, view.vlans) for s in view.subnets]


def ipranges(view: Ranges) -> list[Row]:
    return [
        iprange(r, subnet(view.subnets[r["subnet_id"]], view.vlans), view.owners.get(r["user_id"])) for r in view.ranges
    ]


def spaces(view: Spaces) -> list[Row]:
    by_id = {v["id"]: v for v in view.vlans}
    return [space(s, view.vlans, view.subnets, by_id) for s in view.spaces]


def regions(views: list[RegionView]) -> list[Row]:
    return [
        controller(
            r.node,
            "regioncontrollers",
            extra={
                "processes": [
                    {
                        "pid": p.pid,
                        "worker_index": p.worker_index,
                        "rpc_port": p.rpc_port,
                        "heartbeat": p.updated.isoformat(),
                    }
                    for p in r.processes
                ],
                "service_set": [
                    {"name": name, "status": status, "status_info": info} for name, status, info in r.services
                ],
            },
            in_domain=r.domain,
        )
        for r in views
    ]


def racks(view: Racks) -> list[Row]:
    out = []
    for rack in view.racks:
        system_id = rack.node["system_id"]
        ifaces = [interface(i, system_id, view.vlans, view.subnets) for i in rack.interfaces]
        out.append(
            controller(
                rack.node,
                "rackcontrollers",
                extra={
                    "service_set": [
                        {"name": name, "status": status, "status_info": info} for name, status, info in rack.services
                    ],
                    "interface_set": ifaces,
                    "ip_addresses": [link["ip_address"] for i in ifaces for link in i["links"] if "ip_address" in link],
                },
                in_domain=rack.domain,
            )
        )
    return out
