"""The rack's DHCP engine: ISC Kea 2.2 (kea-dhcp4), with HA, driven by the region's state.

    service = DhcpService(state_dir)        # service.py
    await service.apply(dhcp_state)         # validate, `kea-dhcp4 -t`, start or reconfigure
    service.status()                        # ("running" | "degraded" | "dead" | "off", info)
    service.events                          # durable queue of lease events (leases.py)
    await service.stop()

Modules: `config` (pure: the rack's boot part, grouping into Kea instances, rendering),
`kea` (processes, control socket, supervision), `leases` (lease events from the
memfile, durable queue), `service` (the three together).

The wire contract: DhcpState
----------------------------
The region sends each rack its own view (`GetDhcpState`); the type, its wire
format and every rule a servable state obeys are the contract's:
`metalplane.rpc.dhcp`. The rack adds its ``"boot"`` part (`config.Boot`)::

      "boot": {"http_port": 5248 | None,   # iPXE: http://<rack's address on the VLAN>:PORT/ipxe.cfg
               "loaders": {"bios": "lpxelinux.0", "uefi-x64": "bootx64.efi",
                           "uefi-arm64": "grubaa64.efi"}},

A state that cannot be served raises `InvalidDhcpState`, whose ``errors`` name
each faulty field (e.g.
``vlans[0].subnets[0].pools: a dynamic range would hand out gateway_ip 10.50.0.1``).

Kea instances
-------------
Kea 2.2 allows one HA relationship per server, so the VLANs are grouped into
one kea-dhcp4 process per distinct (role, peer, mode), plus one for all
standalone VLANs (`config.instances`). An HA instance's peer URLs are
``http://<self_address>:<ha_port>/`` and ``http://<peer address>:<ha_port>/`` of
its lowest vlan_id, where the HA hook itself listens (multi-threading with
``http-dedicated-listener``; no kea-ctrl-agent). ``hot-standby`` = MAAS's
``split 255`` (the primary answers everything; secondary -> Kea "standby"),
``load-balancing`` = ``split 128``. Failover timers: `config.HA_TIMERS`.

Lease events
------------
Read from each instance's memfile CSV, not from a per-lease hook process; see
`leases` for the why and the event format.
"""

from metalplane.rack.dhcp.config import InvalidDhcpState, parse_state, plan, render
from metalplane.rack.dhcp.kea import KeaConfigError, KeaError, KeaProcess, prefix_wrap
from metalplane.rack.dhcp.leases import LeaseQueue, LeaseTailer
from metalplane.rack.dhcp.service import DhcpService, DhcpSettings

__all__ = [
    "DhcpService",
    "DhcpSettings",
    "InvalidDhcpState",
    "KeaConfigError",
    "KeaError",
    "KeaProcess",
    "LeaseQueue",
    "LeaseTailer",
    "parse_state",
    "plan",
    "prefix_wrap",
    "render",
]
