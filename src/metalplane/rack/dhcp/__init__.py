"""The rack's DHCP engine: ISC Kea 2.2 (kea-dhcp4), with HA, driven by the region's state.

    service = DhcpService(state_dir)        # service.py
    await service.apply(dhcp_state)         # validate, `kea-dhcp4 -t`, start or reconfigure
    service.status()                        # ("running" | "degraded" | "dead" | "off", info)
    service.events                          # durable queue of lease events (leases.py)
    await service.stop()

Modules: `config` (pure: validation, grouping into Kea instances, rendering),
`kea` (processes, control socket, supervision), `leases` (lease events from the
memfile, durable queue), `service` (the three together).

The wire contract: DhcpState
----------------------------
A plain JSON-able dict, sent by the region to each rack (its own view)::

    {
      "server_name": "rack1",        # this rack's name; required when any VLAN is HA
                                     #   (Kea's this-server-name; the peer knows it by it)
      "ha_port": 5280,               # optional: TCP port of each rack's HA listener
                                     #   (same on every rack; default 5280)
      "vlans": [{
         "vlan_id": 5001,            # the region's VLAN id (unique)
         "vid": 0, "mtu": 1500,      # mtu != 1500 is sent as option 26
         "interface": "eth1",        # the rack's interface on that VLAN (one VLAN each)
         "self_address": "10.50.0.2",# the rack's IP on it, inside one of the VLAN's subnets
         "role": "standalone" | "primary" | "secondary",
         "mode": "hot-standby" | "load-balancing",   # HA only; default hot-standby
         "peer": {"name": "rack2", "address": "10.50.0.3"} | None,   # HA only
         "subnets": [{
            "subnet_id": 1,          # unique, stable: leases are stored by it
            "cidr": "10.50.0.0/24",
            "gateway_ip": "10.50.0.1" | None,
            "dns_servers": [...], "ntp_servers": [...], "domain_name": "maas" | None,
            "pools": [["10.50.0.100", "10.50.0.199"]],      # dynamic ranges
            "reserved": [["10.50.0.150", "10.50.0.160"]],   # never handed out (cut out of pools)
            "lease_time": 600}],     # seconds
      }],
      "hosts": [{"mac": "52:54:00:..", "hostname": "node1" | None, "ip": None | "10.50.0.50"}],
      "boot": {"http_port": 5248 | None,   # iPXE: http://<rack's address on the VLAN>:PORT/ipxe.cfg
               "loaders": {"bios": "lpxelinux.0", "uefi-x64": "bootx64.efi",
                           "uefi-arm64": "grubaa64.efi"}},
    }

``{"vlans": []}`` (or None) means DHCP off. Hosts with an ``ip`` are reserved in
the subnet holding it (and ignored by the others); hosts without one get their
hostname in every subnet. A state that cannot be served raises
`InvalidDhcpState`, whose ``errors`` name each faulty field (e.g.
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
from metalplane.rack.dhcp.service import DhcpService

__all__ = [
    "DhcpService", "InvalidDhcpState", "KeaConfigError", "KeaError", "KeaProcess", "LeaseQueue",
    "LeaseTailer", "parse_state", "plan", "prefix_wrap", "render",
]
