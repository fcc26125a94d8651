"""What the node handlers share: their filter parameters' docs and the `details` answer."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api.framework import param_doc, params_text
from metalplane.region.api.render_nodes import bson_document
from metalplane.region.services import hardware_xml
from metalplane.region.services.rows import Row

NODE_FILTERS_DOC = "\n" + params_text(
    ("hostname", "Only nodes with this hostname (repeatable)."),
    ("mac_address", "Only nodes with an interface with this MAC address (repeatable)."),
    ("id", "Only nodes with this system_id (repeatable)."),
    ("domain", "Only nodes in this domain (repeatable)."),
    ("zone", "Only nodes in this zone."),
    ("pool", "Only nodes in this resource pool."),
    ("agent_name", "Only nodes with this agent name."),
)


def naming_doc(kind: str) -> str:
    """The hostname, description and domain a new node of `kind` ("machine", "device") takes."""
    return (
        "\n"
        + param_doc(
            "hostname", "A hostname (host.domain: the host in that existing domain). If not given, one is generated."
        )
        + param_doc("description", f"A description of the {kind}.")
        + param_doc("domain", f"The domain of the {kind}, by id or name (default: the default domain).")
    )


# What updating a node (machine, device) changes of its naming.
RENAMING_DOC = (
    "\n"
    + param_doc("hostname", "The new hostname (host.domain also moves it to that existing domain).")
    + param_doc("description", "The new description.")
    + param_doc("domain", "The new domain, by id or name.")
)


READ_FILTERS_DOC = (
    NODE_FILTERS_DOC
    + "\n"
    + params_text(
        ("not_id", "Exclude nodes with this system_id (repeatable)."),
        ("not_hostname", "Exclude nodes with this hostname (repeatable)."),
        ("not_domain", "Exclude nodes in this domain."),
        ("not_in_zone", "Exclude nodes in this zone (repeatable)."),
        ("not_in_pool", "Exclude nodes in this resource pool (repeatable)."),
        (
            "status",
            "Only nodes in this status: new, commissioning, failed_commissioning, missing, ready,\n"
            "    reserved, deployed, retired, broken, deploying, allocated, failed_deployment, releasing,\n"
            "    failed_releasing, disk_erasing, failed_disk_erasing, rescue_mode, entering_rescue_mode,\n"
            "    failed_entering_rescue_mode, exiting_rescue_mode, failed_exiting_rescue_mode, testing, "
            "failed_testing.",
        ),
        ("not_status", "Exclude nodes in this status."),
        (
            "simple_status",
            "Only nodes in this simple status (allocated, broken, commissioning, deployed,\n"
            "    deploying, failed, new, ready, releasing, rescue_mode, testing, other).",
        ),
        ("not_simple_status", "Exclude nodes in this simple status."),
        ("arch", "Only nodes of this architecture (amd64 means amd64/*)."),
        ("not_arch", "Exclude nodes of this architecture."),
        ("tags", "Only nodes with all these tags (repeatable, or comma separated)."),
        ("not_tags", "Exclude nodes with any of these tags."),
        ("not_agent_name", "Exclude nodes with this agent name."),
        ("owner", "Only nodes owned by this user."),
        ("not_owner", "Exclude nodes owned by this user."),
        ("cpu_count", "Only nodes with at least this many CPUs.", "integer"),
        ("mem", "Only nodes with at least this much memory (MiB).", "integer"),
        ("cpu_speed", "Only nodes with at least this CPU speed (MHz).", "integer"),
        ("link_speed", "Only nodes with an interface at least this fast (Mbit/s).", "integer"),
        ("fabrics", "Only nodes with an interface on one of these fabrics."),
        ("not_fabrics", "Exclude nodes with an interface on these fabrics."),
        ("fabric_classes", "Only nodes with an interface on a fabric of this class."),
        ("not_fabric_classes", "Exclude nodes with an interface on a fabric of this class."),
        ("vlans", "Only nodes with an interface on this VLAN (id:, vid:, name:, fabric: specifiers)."),
        ("not_vlans", "Exclude nodes with an interface on this VLAN."),
        ("subnets", "Only nodes linked to all these subnets (id, CIDR, name; id:, cidr:, name:, ip:)."),
        ("not_subnets", "Exclude nodes linked to these subnets."),
        ("power_state", "Only nodes in this power state (on, off, unknown, error)."),
        ("not_power_state", "Exclude nodes in this power state."),
        ("pod", "Only nodes of this VM host (metalplane has none)."),
        ("not_pod", "Exclude nodes of this VM host."),
        ("pod_type", "Only nodes of this VM host type."),
        ("not_pod_type", "Exclude nodes of this VM host type."),
        ("deployment_target", "memory or disk."),
        ("not_deployment_target", "memory or disk."),
    )
)


def bson_details(node: Row) -> Response:
    """MAAS's `details`: BSON {"lshw": <hardware document>, "lldp": null}."""
    document = hardware_xml.document_bytes(node) if node.get("hardware") else None
    return Response(bson_document({"lshw": document, "lldp": None}), media_type="application/bson")
