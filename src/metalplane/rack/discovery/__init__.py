"""Network discovery on the rack: ARP seen on its interfaces, reported to the region.

Modules: `arp` (pure: frames -> ARP packets -> bindings), `observations`
(pure: de-duplication, NEW / MOVED / REFRESHED), `listener` (AF_PACKET
sockets), `service` (DiscoveryService: on/off, status, the durable queue,
`rack.event_queue.EventQueue`, shared with DHCP lease events).
"""

from metalplane.rack.discovery.arp import ArpPacket, bindings, parse_arp, parse_frame
from metalplane.rack.discovery.observations import DEFAULT_REFRESH, Bindings, Observation
from metalplane.rack.discovery.service import DiscoveryService

__all__ = [
    "DEFAULT_REFRESH",
    "ArpPacket",
    "Bindings",
    "DiscoveryService",
    "Observation",
    "bindings",
    "parse_arp",
    "parse_frame",
]
