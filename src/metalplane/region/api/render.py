"""JSON shapes of MAAS 2.0 objects, built from what services return (rows and views).

Nothing here queries: a service composes everything a response shows (e.g.
network.Vlans, racks.Racks) and these functions only shape it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from metalplane.region.api.framework import API_PREFIX
from metalplane.region.services.controllers import RegionView
from metalplane.region.services.discoveries import Discovery
from metalplane.region.services.dnsresources import USER_RESERVED, Resource
from metalplane.region.services.domains import DomainView
from metalplane.region.services.machines import STATUS_NAMES, Machines, power_type_of
from metalplane.region.services.network import Fabrics, Vlans
from metalplane.region.services.racks import Racks
from metalplane.region.services.spaces import Spaces
from metalplane.region.services.subnets import Ranges, Subnets
from metalplane.region.services.users import User
from metalplane.rpc.nodes import NodeType

Row = dict[str, Any]
UNDEFINED_SPACE = "undefined"


def uri(path: str) -> str:
    return API_PREFIX + path


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
        "fabric_id": v["fabric_id"],
        "mtu": v["mtu"],
        "description": v["description"],
        "primary_rack": v["primary_rack"],
        "secondary_rack": v["secondary_rack"],
        "dhcp_on": v["dhcp_on"],
        "external_dhcp": v["external_dhcp"],
        "relay_vlan": vlan(relay) if relay else None,
        "space": v["space_name"] or UNDEFINED_SPACE,
        **(extra or {}),
        "resource_uri": uri(f"vlans/{v['id']}/"),
    }


def fabric(f: Row, vlans: list[Row], by_id: dict[int, Row]) -> Row:
    return {
        "id": f["id"],
        "name": f["name"],
        "class_type": f["class_type"],
        "description": f["description"],
        "vlans": [vlan(v, by_id) for v in vlans if v["fabric_id"] == f["id"]],
        "resource_uri": uri(f"fabrics/{f['id']}/"),
    }


def subnet(s: Row, by_id: dict[int, Row]) -> Row:
    v = by_id[s["vlan_id"]]
    return {
        "id": s["id"],
        "name": s["name"],
        "description": s["description"],
        "vlan": vlan(v, by_id),
        "cidr": str(s["cidr"]),
        "gateway_ip": str(s["gateway_ip"]) if s["gateway_ip"] is not None else None,
        "dns_servers": list(s["dns_servers"]),
        "rdns_mode": s["rdns_mode"],
        "allow_dns": s["allow_dns"],
        "allow_proxy": s["allow_proxy"],
        "active_discovery": s["active_discovery"],
        "managed": s["managed"],
        "disabled_boot_architectures": list(s["disabled_boot_architectures"]),
        "space": v["space_name"] or UNDEFINED_SPACE,
        "resource_uri": uri(f"subnets/{s['id']}/"),
    }


def user(u: User) -> Row:
    return {
        "username": u.username,
        "email": u.email,
        "is_superuser": u.is_superuser,
        "is_local": True,
        "resource_uri": uri(f"users/{u.username}/"),
    }


def iprange(r: Row, subnet_json: Row, owner: User | None) -> Row:
    return {
        "id": r["id"],
        "type": r["type"],
        "start_ip": str(r["start_ip"]),
        "end_ip": str(r["end_ip"]),
        "comment": r["comment"] or "",
        "user": user(owner) if owner else None,
        "subnet": subnet_json,
        "resource_uri": uri(f"ipranges/{r['id']}/"),
    }


def zone(z: Row) -> Row:
    return {
        "id": z["id"],
        "name": z["name"],
        "description": z["description"],
        "resource_uri": uri(f"zones/{z['name']}/"),
    }


def space(s: Row, vlans: list[Row], subnets: list[Row], by_id: dict[int, Row]) -> Row:
    mine = [v for v in vlans if v["space_id"] == s["id"]]
    ids = {v["id"] for v in mine}
    return {
        "id": s["id"],
        "name": s["name"],
        "description": s["description"],
        "vlans": [vlan(v, by_id) for v in mine],
        "subnets": [subnet(sn, by_id) for sn in subnets if sn["vlan_id"] in ids],
        "resource_uri": uri(f"spaces/{s['id']}/"),
    }


DEFAULT_DOMAIN = {"authoritative": True, "ttl": None, "id": 0, "resource_record_count": 0,
                  "is_default": True, "name": "maas", "resource_uri": uri("domains/0/")}


def when(moment: datetime) -> str:
    """Django's JSON dates, as MAAS sends them: ISO 8601, milliseconds, UTC as "Z"."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def domain(d: DomainView) -> Row:
    r = d.row
    return {
        "id": r["id"],
        "name": r["name"],
        "ttl": r["ttl"],
        "authoritative": r["authoritative"],
        "resource_record_count": d.resource_record_count,
        "is_default": d.is_default,
        "resource_uri": uri(f"domains/{r['id']}/"),
    }


def dnsresource_record(rec: Row) -> Row:
    return {
        "id": rec["id"],
        "fqdn": rec["fqdn"],
        "ttl": rec["ttl"],
        "rrtype": rec["rrtype"],
        "rrdata": rec["rrdata"],
        "resource_uri": uri(f"dnsresourcerecords/{rec['id']}/"),
    }


def dnsresource(r: Resource) -> Row:
    """A DNS resource; a node's implied records (id -1, `all=true`) carry their data inline."""
    implied = r.ips is None
    return {
        "id": r.id,
        "fqdn": r.fqdn,
        "address_ttl": r.address_ttl,
        "ip_addresses": None if implied else [
            {"ip": ip, "alloc_type": USER_RESERVED, "alloc_type_name": "User reserved"} for ip in r.ips or []],
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
        "observer": {"system_id": d.rack_system_id, "hostname": d.rack_hostname,
                     "interface_id": d.interface_id, "interface_name": d.interface_name},
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
        "power_type": "",
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


def interface(i: Row, system_id: str, vlans_by_id: dict[int, Row], subnets_by_id: dict[int, Row]) -> Row:
    """An entry of a node's interface_set."""
    vlan_row = vlans_by_id.get(i["vlan_id"]) if i["vlan_id"] else None
    return {
        "id": i["id"],
        "name": i["name"],
        "type": i["type"],
        "enabled": i["enabled"],
        "mac_address": i["mac"],
        "vlan": vlan(vlan_row, vlans_by_id) if vlan_row else None,
        "parents": [],
        "children": [],
        "tags": [],
        "params": "",
        "discovered": None,
        "effective_mtu": vlan_row["mtu"] if vlan_row else 1500,
        "links": [
            {"id": n, "mode": "static", "ip_address": link["ip"],
             "subnet": subnet(subnets_by_id[link["subnet_id"]], vlans_by_id) if link["subnet_id"] in subnets_by_id else None}
            for n, link in enumerate(i["links"], start=1)
        ],
        "system_id": system_id,
        "resource_uri": uri(f"nodes/{system_id}/interfaces/{i['id']}/"),
    }


DISCOVERED = 6  # MAAS's alloc_type for addresses seen in DHCP leases


def subnet_addresses(known: list[Row], found: list[Row]) -> list[Row]:
    """MAAS's subnet ip_addresses entries: node addresses, then DHCP leases."""
    out: list[Row] = [
        {"ip": str(a["ip"]), "alloc_type": a["alloc_type"], "alloc_type_name": "Sticky",
         "created": a["created"].isoformat(), "updated": a["updated"].isoformat(), "user": None,
         "mac_address": a["mac"],
         "node_summary": {"system_id": a["system_id"], "node_type": a["node_type"], "hostname": a["hostname"],
                          "fqdn": f"{a['hostname']}.{DEFAULT_DOMAIN['name']}", "via": None}}
        for a in known
    ]
    out += [
        {"ip": str(lease["ip"]), "alloc_type": DISCOVERED, "alloc_type_name": "Discovered",
         "created": lease["created"].isoformat(), "updated": lease["updated"].isoformat(), "user": None,
         "mac_address": lease["mac"], "hostname": lease["hostname"] or None,
         "lease_expires": lease["expires"].isoformat() if lease["expires"] else None}
        for lease in found
    ]
    return out


def machine(m: Row, macs: list[Row], bmc: Row | None, in_domain: DomainView | None = None) -> Row:
    """A machine as MAAS shows it, plus the BMC it shares (owner, candidates)."""
    dom = node_domain(in_domain)
    interfaces = [
        {"id": i["id"], "name": i["name"], "type": "physical", "enabled": True, "mac_address": i["mac"],
         "vlan": None, "links": [], "resource_uri": uri(f"nodes/{m['system_id']}/interfaces/{i['id']}/")}
        for i in macs
    ]
    return {
        "system_id": m["system_id"],
        "hostname": m["hostname"],
        "fqdn": f"{m['hostname']}.{dom['name']}",
        "domain": dom,
        "description": m["description"],
        "architecture": m["architecture"],
        "status": m["status"],
        "status_name": STATUS_NAMES.get(m["status"], str(m["status"])),
        "status_message": m["error_description"] or None,
        "error_description": m["error_description"],
        "power_type": power_type_of(m),
        "power_state": m["power_state"],
        "cpu_count": m["cpu_count"],
        "memory": m["memory"],
        "boot_interface": interfaces[0] if interfaces else None,
        "interface_set": interfaces,
        "ip_addresses": [],
        "zone": zone({"id": m["zone_ref"], "name": m["zone_name"], "description": m["zone_description"]}),
        "node_type": m["node_type"],
        "node_type_name": NodeType(m["node_type"]).label,
        "osystem": "",
        "distro_series": "",
        "owner": None,
        "tag_names": [],
        "bmc": bmc,
        "resource_uri": uri(f"machines/{m['system_id']}/"),
    }


# -- views: what one response shows --------------------------------------------------


def fabrics(view: Fabrics) -> list[Row]:
    by_id = {v["id"]: v for v in view.vlans}
    return [fabric(f, view.vlans, by_id) for f in view.fabrics]


def vlans(view: Vlans) -> list[Row]:
    """VLANs with the rack the seeds say appears as candidate secondary."""
    return [vlan(v, view.by_id, extra={"candidate_secondary_rack": view.candidates.get(v["id"])})
            for v in view.vlans]


def subnets(view: Subnets) -> list[Row]:
    return [subnet(s, view.vlans) for s in view.subnets]


def ipranges(view: Ranges) -> list[Row]:
    return [iprange(r, subnet(view.subnets[r["subnet_id"]], view.vlans), view.owners.get(r["user_id"]))
            for r in view.ranges]


def spaces(view: Spaces) -> list[Row]:
    by_id = {v["id"]: v for v in view.vlans}
    return [space(s, view.vlans, view.subnets, by_id) for s in view.spaces]


def regions(views: list[RegionView]) -> list[Row]:
    return [controller(r.node, "regioncontrollers", extra={
        "processes": [
            {"pid": p.pid, "worker_index": p.worker_index, "rpc_port": p.rpc_port, "heartbeat": p.updated.isoformat()}
            for p in r.processes
        ],
        "service_set": [{"name": name, "status": status, "status_info": info} for name, status, info in r.services],
    }, in_domain=r.domain) for r in views]


def racks(view: Racks) -> list[Row]:
    out = []
    for rack in view.racks:
        system_id = rack.node["system_id"]
        ifaces = [interface(i, system_id, view.vlans, view.subnets) for i in rack.interfaces]
        out.append(controller(rack.node, "rackcontrollers", extra={
            "service_set": [{"name": name, "status": status, "status_info": info}
                            for name, status, info in rack.services],
            "interface_set": ifaces,
            "ip_addresses": [link["ip_address"] for i in ifaces for link in i["links"]],
        }, in_domain=rack.domain))
    return out


def machines(view: Machines) -> list[Row]:
    return [machine(m, view.macs.get(m["id"], []), view.bmcs.get(m["bmc_id"]), view.domains.get(m["id"]))
            for m in view.machines]
