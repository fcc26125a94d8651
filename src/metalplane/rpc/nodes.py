"""What kind of node a row or a peer is: MAAS's node types, with MAAS's numbers.

The numbers are stored in the database and sent over the wire, so they never
change (MAAS's NODE_TYPE: 0 machine ... 4 region and rack controller).
"""

from __future__ import annotations

from enum import IntEnum


class NodeType(IntEnum):
    MACHINE = 0
    DEVICE = 1
    RACK_CONTROLLER = 2
    REGION_CONTROLLER = 3
    REGION_AND_RACK_CONTROLLER = 4

    @property
    def label(self) -> str:
        """MAAS's node_type_name."""
        return _LABELS[self]


_LABELS = {
    NodeType.MACHINE: "Machine",
    NodeType.DEVICE: "Device",
    NodeType.RACK_CONTROLLER: "Rack controller",
    NodeType.REGION_CONTROLLER: "Region controller",
    NodeType.REGION_AND_RACK_CONTROLLER: "Region and rack controller",
}

# A host that is both region and rack is one node of type 4: it counts as either.
RACK_TYPES = (NodeType.RACK_CONTROLLER, NodeType.REGION_AND_RACK_CONTROLLER)
REGION_TYPES = (NodeType.REGION_CONTROLLER, NodeType.REGION_AND_RACK_CONTROLLER)
CONTROLLER_TYPES = (NodeType.RACK_CONTROLLER, NodeType.REGION_CONTROLLER, NodeType.REGION_AND_RACK_CONTROLLER)
