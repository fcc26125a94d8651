"""The region's authoritative DNS (BIND 9): MAAS's zones from a plain model.

    from metalplane.region.dns import AuthoritativeDns, DnsModel, Domain, Record, Subnet
    dns = AuthoritativeDns(data_dir / "dns")
    await dns.apply(DnsModel(domains=(Domain("maas", (Record("node1", "A", "10.50.0.5"),)),),
                             subnets=(Subnet(ip_network("10.50.0.0/24"), "enabled"),),
                             nameservers=(ip_address("10.50.0.1"),)))
    dns.status()          # "bind9": ("running" | "degraded" | "dead" | "off", text)

Modules: `zones` (pure: model -> zones -> zone files, MAAS's forward and
reverse rules), `config` (pure: named.conf), `service` (serials, named).
"""

from metalplane.region.dns.config import AUTHORITATIVE_PORT, CONTROL_PORT, AuthoritativeOptions
from metalplane.region.dns.service import AuthoritativeDns, DnsApplied, next_serial
from metalplane.region.dns.zones import DnsModel, Domain, InvalidDnsModel, Record, Subnet, Zone, zone_names

__all__ = [
    "AUTHORITATIVE_PORT",
    "CONTROL_PORT",
    "AuthoritativeDns",
    "AuthoritativeOptions",
    "DnsApplied",
    "DnsModel",
    "Domain",
    "InvalidDnsModel",
    "Record",
    "Subnet",
    "Zone",
    "next_serial",
    "zone_names",
]
