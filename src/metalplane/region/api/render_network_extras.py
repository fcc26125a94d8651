"""JSON shapes of static routes and DHCP snippets (MAAS's handler fields)."""

from __future__ import annotations

from email.utils import format_datetime

from metalplane.region.api.render import Row, subnet, uri
from metalplane.region.services.dhcp_snippets import Snippets
from metalplane.region.services.static_routes import Routes
from metalplane.rpc.nodes import NodeType


def static_routes(view: Routes) -> list[Row]:
    return [
        {
            "id": r["id"],
            "source": subnet(view.subnets[r["source_id"]], view.vlans),
            "destination": subnet(view.subnets[r["destination_id"]], view.vlans),
            "gateway_ip": str(r["gateway_ip"]),
            "metric": r["metric"],
            "resource_uri": uri(f"static-routes/{r['id']}/"),
        }
        for r in view.routes
    ]


def _node(n: Row) -> Row:
    return {
        "system_id": n["system_id"],
        "hostname": n["hostname"],
        "node_type": n["node_type"],
        "node_type_name": NodeType(n["node_type"]).label,
        "resource_uri": uri(f"nodes/{n['system_id']}/"),
    }


def dhcp_snippets(view: Snippets) -> list[Row]:
    out = []
    for s in view.snippets:
        versions = view.versions[s["id"]]  # oldest first
        out.append(
            {
                "id": s["id"],
                "name": s["name"],
                "value": versions[-1]["data"],
                "history": [
                    {"id": v["id"], "value": v["data"], "created": format_datetime(v["created"])}
                    for v in reversed(versions)
                ],
                "description": s["description"],
                "enabled": s["enabled"],
                "node": _node(view.nodes[s["node_id"]]) if s["node_id"] is not None else None,
                "subnet": subnet(view.subnets[s["subnet_id"]], view.vlans) if s["subnet_id"] is not None else None,
                "global_snippet": s["node_id"] is None and s["subnet_id"] is None,
                "resource_uri": uri(f"dhcp-snippets/{s['id']}/"),
            }
        )
    return out
