"""What the node handlers share: their filter parameters' docs and the `details` answer."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api.framework import param_doc
from metalplane.region.api.render_nodes import bson_document
from metalplane.region.services import hardware_xml
from metalplane.region.services.rows import Row

NODE_FILTERS_DOC = """
:param hostname: Only nodes with this hostname (repeatable).
:type hostname: unicode
:param mac_address: Only nodes with an interface with this MAC address (repeatable).
:type mac_address: unicode
:param id: Only nodes with this system_id (repeatable).
:type id: unicode
:param domain: Only nodes in this domain (repeatable).
:type domain: unicode
:param zone: Only nodes in this zone.
:type zone: unicode
:param pool: Only nodes in this resource pool.
:type pool: unicode
:param agent_name: Only nodes with this agent name.
:type agent_name: unicode
"""


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
    + """
:param not_id: Exclude nodes with this system_id (repeatable).
:type not_id: unicode
:param not_hostname: Exclude nodes with this hostname (repeatable).
:type not_hostname: unicode
:param not_domain: Exclude nodes in this domain.
:type not_domain: unicode
:param not_in_zone: Exclude nodes in this zone (repeatable).
:type not_in_zone: unicode
:param not_in_pool: Exclude nodes in this resource pool (repeatable).
:type not_in_pool: unicode
:param status: Only nodes in this status: new, commissioning, failed_commissioning, missing, ready,
    reserved, deployed, retired, broken, deploying, allocated, failed_deployment, releasing,
    failed_releasing, disk_erasing, failed_disk_erasing, rescue_mode, entering_rescue_mode,
    failed_entering_rescue_mode, exiting_rescue_mode, failed_exiting_rescue_mode, testing, failed_testing.
:type status: unicode
:param not_status: Exclude nodes in this status.
:type not_status: unicode
:param simple_status: Only nodes in this simple status (allocated, broken, commissioning, deployed,
    deploying, failed, new, ready, releasing, rescue_mode, testing, other).
:type simple_status: unicode
:param not_simple_status: Exclude nodes in this simple status.
:type not_simple_status: unicode
:param arch: Only nodes of this architecture (amd64 means amd64/*).
:type arch: unicode
:param not_arch: Exclude nodes of this architecture.
:type not_arch: unicode
:param tags: Only nodes with all these tags (repeatable, or comma separated).
:type tags: unicode
:param not_tags: Exclude nodes with any of these tags.
:type not_tags: unicode
:param not_agent_name: Exclude nodes with this agent name.
:type not_agent_name: unicode
:param owner: Only nodes owned by this user.
:type owner: unicode
:param not_owner: Exclude nodes owned by this user.
:type not_owner: unicode
:param cpu_count: Only nodes with at least this many CPUs.
:type cpu_count: integer
:param mem: Only nodes with at least this much memory (MiB).
:type mem: integer
:param cpu_speed: Only nodes with at least this CPU speed (MHz).
:type cpu_speed: integer
:param link_speed: Only nodes with an interface at least this fast (Mbit/s).
:type link_speed: integer
:param fabrics: Only nodes with an interface on one of these fabrics.
:type fabrics: unicode
:param not_fabrics: Exclude nodes with an interface on these fabrics.
:type not_fabrics: unicode
:param fabric_classes: Only nodes with an interface on a fabric of this class.
:type fabric_classes: unicode
:param not_fabric_classes: Exclude nodes with an interface on a fabric of this class.
:type not_fabric_classes: unicode
:param vlans: Only nodes with an interface on this VLAN (id:, vid:, name:, fabric: specifiers).
:type vlans: unicode
:param not_vlans: Exclude nodes with an interface on this VLAN.
:type not_vlans: unicode
:param subnets: Only nodes linked to all these subnets (id, CIDR, name; id:, cidr:, name:, ip:).
:type subnets: unicode
:param not_subnets: Exclude nodes linked to these subnets.
:type not_subnets: unicode
:param power_state: Only nodes in this power state (on, off, unknown, error).
:type power_state: unicode
:param not_power_state: Exclude nodes in this power state.
:type not_power_state: unicode
:param pod: Only nodes of this VM host (metalplane has none).
:type pod: unicode
:param not_pod: Exclude nodes of this VM host.
:type not_pod: unicode
:param pod_type: Only nodes of this VM host type.
:type pod_type: unicode
:param not_pod_type: Exclude nodes of this VM host type.
:type not_pod_type: unicode
:param deployment_target: memory or disk.
:type deployment_target: unicode
:param not_deployment_target: memory or disk.
:type not_deployment_target: unicode
"""
)


def bson_details(node: Row) -> Response:
    """MAAS's `details`: BSON {"lshw": <hardware document>, "lldp": null}."""
    document = hardware_xml.document_bytes(node) if node.get("hardware") else None
    return Response(bson_document({"lshw": document, "lldp": None}), media_type="application/bson")
