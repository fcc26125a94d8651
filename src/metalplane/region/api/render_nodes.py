"""JSON of nodes as MAAS's handlers declare them: machines (82 keys), devices, interfaces
(one shape wherever they nest), block devices, partitions and script results.

Everything comes from a services.nodes.NodesView; nothing here queries. Values
metalplane does not track are MAAS's neutral ones (maas_field_values.json), never
missing keys.
"""

from __future__ import annotations

import base64
from email.utils import format_datetime
from typing import Any

from metalplane.region.api import render
from metalplane.region.api.render import Row, columns, node_domain, uri
from metalplane.region.api.render_controllers import HARDWARE_INFO_KEYS
from metalplane.region.services import events as events_service
from metalplane.region.services import script_results as scripts
from metalplane.region.services.machines import STATUS_NAMES, power_type_of
from metalplane.region.services.nodes import DISCOVERED, NodesView
from metalplane.rpc.nodes import NodeType

TEST_STATUS_KEYS = ("cpu_test", "memory_test", "network_test", "storage_test", "other_test", "interface_test")


def interface(view: NodesView, i: Row, system_id: str) -> Row:
    return render.interface(i, system_id, view.vlans, view.subnets, view.leases.get(i["mac"] or "", []))


def interfaces(view: NodesView, node: Row) -> list[Row]:
    return [interface(view, i, node["system_id"]) for i in view.interfaces.get(node["id"], [])]


def ip_addresses(view: NodesView, node: Row) -> list[str]:
    """Static and auto addresses first; else what DHCP leased to the node's MACs."""
    ifaces = view.interfaces.get(node["id"], [])
    assigned = [x["ip"] for i in ifaces for x in i["links"] if x["ip"] is not None and x["alloc_type"] != DISCOVERED]
    if assigned:
        return assigned
    return [ip for i in ifaces for ip in view.leases.get(i["mac"] or "", [])]


def partition(node: Row, disk: Row, p: Row) -> Row:
    return {
        "system_id": node["system_id"],
        "device_id": disk["id"],
        "id": p["id"],
        "uuid": p["uuid"],
        "path": f"/dev/disk/by-dname/{disk['name']}-part{p['number']}",
        "type": "partition",
        "size": p["size"],
        "bootable": p["bootable"],
        "filesystem": None,
        "used_for": "Unused",
        "tags": list(p["tags"]),
        "resource_uri": uri(f"nodes/{node['system_id']}/blockdevices/{disk['id']}/partition/{p['id']}"),
    }


def block_device(node: Row, disk: Row) -> Row:
    """MAAS's BlockDeviceHandler fields (21) + resource_uri, for a physical disk."""
    parts = disk["partitions"]
    used = sum(p["size"] for p in parts)
    used_for = f"GPT partitioned with {len(parts)} partition{'s' if len(parts) != 1 else ''}" if parts else "Unused"
    return {
        "system_id": node["system_id"],
        "id": disk["id"],
        "name": disk["name"],
        "uuid": None,
        "type": "physical",
        "path": f"/dev/disk/by-dname/{disk['name']}",
        "model": disk["model"],
        "serial": disk["serial"],
        "id_path": disk["id_path"],
        "size": disk["size"],
        "block_size": disk["block_size"],
        "available_size": disk["size"] - used,
        "used_size": used,
        "used_for": used_for,
        "tags": list(disk["tags"]),
        "filesystem": None,
        "partition_table_type": "GPT" if parts else None,
        "partitions": [partition(node, disk, p) for p in parts],
        "firmware_version": None,
        "storage_pool": None,
        "numa_node": 0,
        "resource_uri": uri(f"nodes/{node['system_id']}/blockdevices/{disk['id']}/"),
    }


def _default_gateways(view: NodesView, node: Row) -> Row:
    out: Row = {}
    links = {x["id"]: x for i in view.interfaces.get(node["id"], []) for x in i["links"]}
    for family, key in (("ipv4", "gateway_link_ipv4_id"), ("ipv6", "gateway_link_ipv6_id")):
        chosen = links.get(node.get(key))
        subnet = view.subnets.get(chosen["subnet_id"]) if chosen and chosen["subnet_id"] else None
        gateway = str(subnet["gateway_ip"]) if subnet and subnet["gateway_ip"] is not None else None
        out[family] = {"gateway_ip": gateway, "link_id": chosen["id"] if chosen else None}
    return out


def _pool(node: Row) -> Row | None:
    if node.get("pool_id") is None:
        return None
    return pool({"id": node["pool_id"], "name": node["pool_name"], "description": node["pool_description"]})


def pool(p: Row) -> Row:
    return {**columns(p, "id", "name", "description"), "resource_uri": uri(f"resourcepool/{p['id']}/")}


def _zone(node: Row) -> Row:
    return render.zone({"id": node["zone_ref"], "name": node["zone_name"], "description": node["zone_description"]})


def _status_event_fields(view: NodesView, node: Row) -> Row:
    event = view.shown_events.get(node["id"])
    return {"status_action": event["action"] if event else None, "status_message": events_service.status_message(event)}


def machine(view: NodesView, m: Row) -> Row:
    """A machine as MAAS 3.7 shows it (82 keys), plus the BMC it shares (owner, candidates)."""
    ifaces = interfaces(view, m)
    disks = [block_device(m, d) for d in view.disks.get(m["id"], [])]
    commissioning = view.script_sets.get(m["id"], {}).get(scripts.COMMISSIONING)
    testing = view.script_sets.get(m["id"], {}).get(scripts.TESTING)
    installation = view.script_sets.get(m["id"], {}).get(scripts.INSTALLATION)
    commissioning_status = scripts.set_status(commissioning)
    testing_status = scripts.set_status(testing)
    hardware = m["hardware"] or {}
    out: Row = {
        **columns(m, "system_id", "hostname", "description", "hardware_uuid"),
        **_ownership(view, m),
        "locked": m["locked"],
        "cache_sets": [],
        "bcaches": [],
        "bios_boot_method": m["boot_method"],
        "boot_interface": ifaces[0] if ifaces else None,
        **columns(m, "architecture", "min_hwe_kernel", "hwe_kernel", "cpu_count", "cpu_speed", "memory", "swap_size"),
        "storage": sum(d["size"] for d in disks) / 1000 / 1000,
        **columns(m, "status", "osystem", "distro_series"),
        "ephemeral_deploy": False,
        "error_description": m["error_description"],
        "netboot": m["netboot"],
        "power_type": power_type_of(m),
        "power_state": m["power_state"],
        "tag_names": view.tags.get(m["id"], []),
        "address_ttl": None,
        "ip_addresses": ip_addresses(view, m),
        "interface_set": ifaces,
        "zone": _zone(m),
        "pool": _pool(m),
        "disable_ipv4": False,
        "boot_disk": disks[0] if disks else None,
        "blockdevice_set": disks,
        "physicalblockdevice_set": disks,
        "virtualblockdevice_set": [],
        "volume_groups": [],
        "raids": [],
        **_status_event_fields(view, m),
        "status_name": STATUS_NAMES.get(m["status"], str(m["status"])),
        "node_type": m["node_type"],
        "node_type_name": NodeType(m["node_type"]).label,
        "special_filesystems": [],
        "parent": None,
        "pod": None,
        "default_gateways": _default_gateways(view, m),
        "current_commissioning_result_id": commissioning["id"] if commissioning else None,
        "current_testing_result_id": testing["id"] if testing else None,
        "current_installation_result_id": installation["id"] if installation else None,
        "commissioning_status": commissioning_status,
        "commissioning_status_name": scripts.STATUS_NAMES[commissioning_status],
        "hardware_info": dict.fromkeys(HARDWARE_INFO_KEYS, "Unknown")
        | ({"cpu_model": hardware["cpu_model"]} if hardware.get("cpu_model") else {}),
        "numanode_set": [
            {"index": 0, "cores": list(range(m["cpu_count"])), "memory": m["memory"], "hugepages_set": []}
        ],
        "virtualmachine_id": None,
        "workload_annotations": dict(m["owner_data"] or {}),
        "last_sync": None,
        "sync_interval": None,
        "next_sync": None,
        "enable_hw_sync": False,
        "enable_kernel_crash_dump": False,
        "is_dpu": False,
        "bmc": view.bmcs.get(m["bmc_id"]) if m.get("bmc_id") else None,
        "resource_uri": uri(f"machines/{m['system_id']}/"),
    }
    out["testing_status"] = testing_status
    out["testing_status_name"] = scripts.STATUS_NAMES[testing_status]
    for prefix in TEST_STATUS_KEYS:  # per hardware type: metalplane runs no tests yet
        out[f"{prefix}_status"] = scripts.UNKNOWN
        out[f"{prefix}_status_name"] = scripts.STATUS_NAMES[scripts.UNKNOWN]
    return out


def _ownership(view: NodesView, n: Row) -> Row:
    """A machine's or device's domain, FQDN and owner."""
    return {
        "domain": node_domain(view.domains.get(n["id"])),
        "fqdn": f"{n['hostname']}.{view.domain_name(n)}",
        "owner": n["owner_name"],
        "owner_data": dict(n["owner_data"] or {}),
    }


def device(view: NodesView, d: Row) -> Row:
    """MAAS's DeviceHandler fields (16) + resource_uri."""
    return {
        **columns(d, "system_id", "hostname", "description"),
        **_ownership(view, d),
        "parent": d["parent_system_id"],
        "tag_names": view.tags.get(d["id"], []),
        "address_ttl": None,
        "ip_addresses": ip_addresses(view, d),
        "interface_set": interfaces(view, d),
        "zone": _zone(d),
        "node_type": d["node_type"],
        "node_type_name": NodeType(d["node_type"]).label,
        "workload_annotations": dict(d["owner_data"] or {}),
        "resource_uri": uri(f"devices/{d['system_id']}/"),
    }


def any_node(view: NodesView, n: Row) -> Row:
    """A node in nodes/ and tag listings: each type in its own handler's shape."""
    if n["node_type"] == NodeType.MACHINE:
        return machine(view, n)
    if n["node_type"] == NodeType.DEVICE:
        return device(view, n)
    collection = "regioncontrollers" if n["node_type"] == NodeType.REGION_CONTROLLER else "rackcontrollers"
    ifaces = interfaces(view, n)
    return render.controller(
        n,
        collection,
        extra={"interface_set": ifaces, "ip_addresses": ip_addresses(view, n), "tag_names": view.tags.get(n["id"], [])},
    )


def machines(view: NodesView) -> list[Row]:
    return [machine(view, m) for m in view.nodes]


def devices(view: NodesView) -> list[Row]:
    return [device(view, d) for d in view.nodes]


def nodes(view: NodesView) -> list[Row]:
    return [any_node(view, n) for n in view.nodes]


# -- script results -----------------------------------------------------------------------


def _time(value: Any) -> str | None:
    return format_datetime(value) if value is not None else None


def script_result(r: Row, include_output: bool) -> Row:
    status = scripts.result_status(r["exit_status"])
    out = {
        "id": r["id"],
        "created": format_datetime(r["created"]),
        "updated": format_datetime(r["updated"]),
        "name": r["name"],
        "status": status,
        "status_name": scripts.STATUS_NAMES[status],
        "exit_status": r["exit_status"],
        "started": None,
        "ended": _time(r["created"]),
        "runtime": scripts.runtime_text(r["runtime"]),
        "starttime": "",
        "endtime": r["created"].timestamp(),
        "estimated_runtime": scripts.runtime_text(r["runtime"]),
        "parameters": {},
        "script_id": None,
        "script_revision_id": None,
        "suppressed": False,
    }
    if include_output:
        encoded = base64.b64encode(r["output"].encode()).decode()
        out.update(output=encoded, stdout=encoded, stderr="", result="")
    return out


def script_set(node: Row, s: Row, include_output: bool = False, filters: list[str] | None = None) -> Row:
    """MAAS's NodeScriptResultHandler fields (12) + resource_uri."""
    status = scripts.set_status(s)
    runtime = (s["ended"] - s["created"]).total_seconds() if s["ended"] else None
    return {
        "id": s["id"],
        "system_id": node["system_id"],
        "type": s["result_type"],
        "type_name": scripts.RESULT_TYPE_NAMES[s["result_type"]],
        "last_ping": _time(s["last_ping"]),
        "status": status,
        "status_name": scripts.STATUS_NAMES[status],
        "started": _time(s["created"]),
        "ended": _time(s["ended"]),
        "runtime": scripts.runtime_text(runtime),
        "results": [script_result(r, include_output) for r in scripts.filter_results(s["results"], filters)],
        "suppressed": False,
        "resource_uri": uri(f"nodes/{node['system_id']}/results/{s['id']}/"),
    }


def node_result(r: Row) -> Row:
    """MAAS's NodeResultsHandler entry (commissioning results, base64 data)."""
    return {
        "created": r["created"].isoformat(),
        "updated": r["updated"].isoformat(),
        "id": r["id"],
        "name": r["name"],
        "script_result": r["exit_status"],
        "result_type": r["result_type"],
        "node": {"system_id": r["system_id"]},
        "data": base64.b64encode(r["output"].encode()).decode(),
        "resource_uri": uri("commissioning-scripts/"),
    }


def bson_document(values: dict[str, bytes | None]) -> bytes:
    """A BSON document of binary and null values (what MAAS's `details` answers)."""
    body = b""
    for key, value in values.items():
        name = key.encode() + b"\x00"
        if value is None:
            body += b"\x0a" + name
        else:
            body += b"\x05" + name + len(value).to_bytes(4, "little", signed=True) + b"\x00" + value
    return (len(body) + 5).to_bytes(4, "little", signed=True) + body + b"\x00"
