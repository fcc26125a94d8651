"""Pure: the region's DNS model -> zones -> BIND zone files.

Nothing here touches a disk, a network or a process; `service` runs what this
produces. The rules are MAAS's (maasserver/dns/zonegenerator.py,
provisioningserver/dns/zoneconfig.py and the zone template), rewritten:

* one forward zone per authoritative domain, ``$TTL`` = the domain's ttl or
  `default_dns_ttl` (MAAS default 30); SOA ``<ns> nobody.example.com. (serial
  600 1800 604800 ttl)``; NS = the default domain's name, which has an A/AAAA
  record per region DNS address; an authoritative child domain (``lab.maas``
  under ``maas``) is delegated with an NS record (with glue when the NS name
  lives inside it);
* reverse zones per subnet by its ``rdns_mode``: ``disabled`` none;
  ``enabled`` a zone per octet boundary (IPv6: nibble): a /16 or /24 is one
  zone, a /22 is four /24 zones (``0.50.10.in-addr.arpa``...), a /12 sixteen
  /16 zones; a subnet smaller than a /24 (/124) gets a zone named
  ``<first>-<prefixlen>.<parent>`` (``128-26.0.50.10.in-addr.arpa``);
  ``rfc2317`` is ``enabled`` plus RFC 2317 glue for a subnet smaller than a /24:
  the parent /24's zone (the one MAAS serves for another subnet, or one made
  only for the glue) gets a CNAME per address of the small subnet pointing into
  its zone (``$GENERATE 128-191 $.0.50.10.in-addr.arpa. CNAME
  $.128-26.0.50.10.in-addr.arpa.``), and holds no PTR of its own for them;
* a PTR for every A/AAAA record of every domain, in every reverse zone whose
  network holds the address, pointing at the record's FQDN.

Owners in reverse zones are written fully qualified, so a record or glue line
means the same in a /24 zone and in the /16 zone that may hold it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from metalplane.dns.conf import FieldErrors

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: MAAS's RDNS_MODE values 0, 1, 2 by name.
RDNS_MODES = ("disabled", "enabled", "rfc2317")
#: The record types MAAS's dnsresource-records accept.
RRTYPES = ("A", "AAAA", "CNAME", "MX", "NS", "SRV", "SSHFP", "TXT")
#: MAAS's default_dns_ttl.
DEFAULT_TTL = 30
MAX_TTL = 2**31 - 1
SOA_TIMERS = (600, 1800, 604800)  # refresh, retry, expire (MAAS's zone template)
SOA_RNAME = "nobody.example.com."

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_RECORD_NAME_RE = re.compile(rf"^(@|(\*\.)?{_LABEL}(\.{_LABEL})*|\*)$")
_HOST_RE = re.compile(rf"^(@|{_LABEL}(\.{_LABEL})*\.?)$")
_RRDATA_RE = {
    "CNAME": _HOST_RE,
    "NS": _HOST_RE,
    "MX": re.compile(rf"^\d{{1,5}}\s+{_HOST_RE.pattern[1:-1]}$"),
    "SRV": re.compile(rf"^\d{{1,5}}\s+\d{{1,5}}\s+\d{{1,5}}\s+{_HOST_RE.pattern[1:-1]}$"),
    "SSHFP": re.compile(r"^\d{1,3}\s+\d{1,3}\s+[0-9A-Fa-f]+$"),
}


class InvalidDnsModel(FieldErrors):
    """The model cannot be turned into zones; `errors` names each faulty field."""

    what = "DNS model"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Record:
    """One record of a domain; `name` is relative to it ("@" is the domain itself)."""

    name: str
    rrtype: str
    rrdata: str
    ttl: int | None = None


@dataclass(frozen=True)
class Domain:
    name: str
    records: tuple[Record, ...] = ()
    ttl: int | None = None  #: None: default_ttl
    authoritative: bool = True  #: MAAS serves zones only for authoritative domains


@dataclass(frozen=True)
class Subnet:
    cidr: Network
    rdns_mode: str = "enabled"


@dataclass(frozen=True)
class DnsModel:
    """What the region's authoritative DNS serves (built by the wiring from the database)."""

    domains: tuple[Domain, ...]
    subnets: tuple[Subnet, ...] = ()
    default_domain: str = "maas"
    default_ttl: int = DEFAULT_TTL
    nameservers: tuple[IP, ...] = ()  #: the regions' DNS addresses: A/AAAA of the NS name


@dataclass(frozen=True)
class Zone:
    """One zone: its records after the SOA and NS (text lines), and for a reverse zone its network."""

    name: str
    ttl: int
    lines: tuple[str, ...]
    network: Network | None = None
    glue_only: bool = False  #: made only to hold RFC 2317 glue
    covers: tuple[Network, ...] = field(default=(), compare=False)


# --------------------------------------------------------------------------- validation


def validate(model: DnsModel) -> None:
    """Raise InvalidDnsModel naming every field that cannot be served."""
    errs: list[str] = []
    if not _ttl_ok(model.default_ttl):
        errs.append(f"default_ttl: {model.default_ttl} is not a TTL (0..{MAX_TTL})")
    seen: set[str] = set()
    for i, dom in enumerate(model.domains):
        where = f"domains[{i}]"
        name = dom.name.lower().rstrip(".")
        if not _DOMAIN_RE.match(name) or len(name) > 253:
            errs.append(f"{where}.name: {dom.name!r} is not a valid domain name")
        if name in seen:
            errs.append(f"{where}.name: domain {name} is given twice")
        seen.add(name)
        if dom.ttl is not None and not _ttl_ok(dom.ttl):
            errs.append(f"{where}.ttl: {dom.ttl} is not a TTL (0..{MAX_TTL})")
        for j, rec in enumerate(dom.records):
            errs += _record_errors(rec, f"{where}.records[{j}]")
    default = model.default_domain.lower().rstrip(".")
    if not any(d.name.lower().rstrip(".") == default and d.authoritative for d in model.domains):
        errs.append(f"default_domain: {model.default_domain!r} is not one of the authoritative domains")
    if not model.nameservers:
        errs.append("nameservers: at least one address is needed (the A/AAAA of the zones' NS name)")
    for i, sub in enumerate(model.subnets):
        if sub.rdns_mode not in RDNS_MODES:
            errs.append(f"subnets[{i}].rdns_mode: {sub.rdns_mode!r} is not one of {', '.join(RDNS_MODES)}")
        if sub.cidr.prefixlen == 0:
            errs.append(f"subnets[{i}].cidr: {sub.cidr} has no reverse zone")
    if errs:
        raise InvalidDnsModel(errs)


def name_conflicts(records: Iterable[Record]) -> list[str]:
    """MAAS's rules for one domain's records: a CNAME stands alone on its name (no second
    CNAME, no other record, no address); BIND refuses the zone otherwise."""
    by_name: dict[str, list[str]] = {}
    for rec in records:
        by_name.setdefault(rec.name.lower(), []).append(rec.rrtype)
    out = []
    for name, types in sorted(by_name.items()):
        cnames = types.count("CNAME")
        if cnames > 1:
            out.append(f"{name}: Only one CNAME can be associated with a name.")
        elif cnames and len(types) > 1:
            out.append(f"{name}: CNAME records for a name cannot coexist with non-CNAME records.")
    return out


def servable(model: DnsModel) -> tuple[DnsModel, list[str]]:
    """`model` without the records BIND could not serve (a bad name or data, a CNAME beside
    other data), and why each was left out: what the database holds is served as far as it
    can be, rather than not at all."""
    problems: list[str] = []
    domains = []
    for dom in model.domains:
        kept = []
        for rec in dom.records:
            errs = _record_errors(rec, f"{dom.name}: {rec.name} {rec.rrtype}")
            problems += errs
            if not errs:
                kept.append(rec)
        clash = {line.split(":", 1)[0] for line in name_conflicts(kept)}
        problems += [f"{dom.name}: {line}; its CNAME left out" for line in name_conflicts(kept)]
        kept = [r for r in kept if not (r.name.lower() in clash and r.rrtype == "CNAME")]
        domains.append(Domain(dom.name, tuple(kept), dom.ttl, dom.authoritative))
    return DnsModel(tuple(domains), model.subnets, model.default_domain, model.default_ttl, model.nameservers), problems


def _ttl_ok(ttl: object) -> bool:
    return isinstance(ttl, int) and not isinstance(ttl, bool) and 0 <= ttl <= MAX_TTL


def _record_errors(rec: Record, where: str) -> list[str]:
    errs = []
    if not _RECORD_NAME_RE.match(rec.name):
        errs.append(f"{where}.name: {rec.name!r} is not a valid name in a domain")
    if rec.rrtype not in RRTYPES:
        errs.append(f"{where}.rrtype: {rec.rrtype!r} is not one of {', '.join(RRTYPES)}")
        return errs
    if rec.ttl is not None and not _ttl_ok(rec.ttl):
        errs.append(f"{where}.ttl: {rec.ttl} is not a TTL (0..{MAX_TTL})")
    data = rec.rrdata.strip()
    if rec.rrtype in ("A", "AAAA"):
        try:
            ip = ipaddress.ip_address(data)
        except ValueError:
            ip = None
        if ip is None or ip.version != (4 if rec.rrtype == "A" else 6):
            errs.append(f"{where}.rrdata: {rec.rrdata!r} is not an IPv{4 if rec.rrtype == 'A' else 6} address")
    elif rec.rrtype == "TXT":
        if not data or any(ord(c) < 32 for c in data) or len(data) > 65000:
            errs.append(f"{where}.rrdata: TXT data must be printable text on one line")
    elif not _RRDATA_RE[rec.rrtype].match(data):
        errs.append(f"{where}.rrdata: {rec.rrdata!r} is not valid {rec.rrtype} data")
    return errs


# --------------------------------------------------------------------------- reverse zones


def reverse_zone_networks(cidr: Network) -> list[Network]:
    """The networks of the reverse zones that cover `cidr`: octet (IPv6: nibble) boundaries,
    a subnet smaller than a /24 (/124) being its own zone."""
    width, step = (32, 8) if cidr.version == 4 else (128, 4)
    zone_prefix = (cidr.prefixlen + step - 1) // step * step
    if zone_prefix == width:
        zone_prefix = cidr.prefixlen
    if zone_prefix == cidr.prefixlen:
        return [cidr]
    return list(cidr.subnets(new_prefix=zone_prefix))


def _drop_count(network: Network) -> int:
    """How many leading labels of an address's reverse name the zone of `network` does not hold."""
    return (40 - network.prefixlen) // 8 if network.version == 4 else (132 - network.prefixlen) // 4


def reverse_zone_name(network: Network) -> str:
    """MAAS's name of the reverse zone for a zone network (see `reverse_zone_networks`)."""
    labels = network.network_address.reverse_pointer.split(".")
    rest = _drop_count(network)
    if rest > 1:
        return ".".join(labels[rest - 1 :])
    return f"{labels[0]}-{network.prefixlen}." + ".".join(labels[1:])


def ptr_owner(ip: IP, network: Network) -> str:
    """The fully qualified owner of `ip`'s PTR in the zone of `network`."""
    keep = (31 - network.prefixlen) // 8 + 1 if network.version == 4 else (127 - network.prefixlen) // 4 + 1
    labels = ip.reverse_pointer.split(".")
    return ".".join(labels[:keep]) + "." + reverse_zone_name(network) + "."


def rfc2317_parent(cidr: Network) -> Network | None:
    """The /24 (/124) whose zone carries RFC 2317 glue for `cidr`, if it is smaller than that."""
    limit = 24 if cidr.version == 4 else 124
    if cidr.prefixlen <= limit:
        return None
    return cidr.supernet(new_prefix=limit)


def rfc2317_glue(child: Network) -> str:
    """One $GENERATE line: each address of `child` -> CNAME into the child's own zone."""
    parent = rfc2317_parent(child)
    assert parent is not None
    first = int(child.network_address) - int(parent.network_address)
    last = first + child.num_addresses - 1
    digit = "$" if child.version == 4 else "${0,1,x}"
    return f"$GENERATE {first}-{last} {digit}.{reverse_zone_name(parent)}. IN CNAME {digit}.{reverse_zone_name(child)}."


# --------------------------------------------------------------------------- zones


def _fqdn(name: str, domain: str) -> str:
    return f"{domain}." if name == "@" else f"{name}.{domain}."


def _txt(data: str) -> str:
    if data.startswith('"') and data.endswith('"') and len(data) > 1:
        return data
    return '"' + data.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _record_line(rec: Record) -> str:
    ttl = f" {rec.ttl}" if rec.ttl is not None else ""
    data = _txt(rec.rrdata.strip()) if rec.rrtype == "TXT" else " ".join(rec.rrdata.split())
    return f"{rec.name.lower()}{ttl} IN {rec.rrtype} {data}"


def _address_line(owner: str, ip: IP, ttl: int | None = None) -> str:
    return f"{owner}{f' {ttl}' if ttl is not None else ''} IN {'A' if ip.version == 4 else 'AAAA'} {ip}"


def forward_zones(model: DnsModel) -> list[Zone]:
    """One zone per authoritative domain (the default domain carries the NS name's addresses)."""
    names = {d.name.lower().rstrip(".") for d in model.domains if d.authoritative}
    default = model.default_domain.lower().rstrip(".")
    zones = []
    for dom in sorted((d for d in model.domains if d.authoritative), key=lambda d: d.name.lower()):
        name = dom.name.lower().rstrip(".")
        ttl = model.default_ttl if dom.ttl is None else dom.ttl
        lines: list[str] = []
        if name == default:
            lines += [_address_line("@", ip) for ip in model.nameservers]
        for child in sorted(_children(name, names)):
            label = child[: -len(name) - 1]
            lines.append(f"{label} IN NS {default}.")
            if default == child or default.endswith("." + child):  # the NS name is inside: glue
                owner = default[: -len(name) - 1]
                lines += [_address_line(owner, ip) for ip in model.nameservers]
        lines += [_record_line(r) for r in dom.records]
        zones.append(Zone(name, ttl, tuple(lines)))
    return zones


def _children(name: str, names: Iterable[str]) -> set[str]:
    """The domains directly below `name` (no other served domain in between)."""
    below = {n for n in names if n.endswith("." + name)}
    return {n for n in below if not any(n.endswith("." + m) for m in below if m != n)}


def _addresses(model: DnsModel) -> list[tuple[IP, str, int | None]]:
    """(address, FQDN, ttl) of every A/AAAA record of every authoritative domain."""
    out = []
    for dom in model.domains:
        if not dom.authoritative:
            continue
        name = dom.name.lower().rstrip(".")
        for rec in dom.records:
            if rec.rrtype in ("A", "AAAA") and "*" not in rec.name:
                out.append((ipaddress.ip_address(rec.rrdata.strip()), _fqdn(rec.name.lower(), name), rec.ttl))
    return sorted(set(out), key=lambda a: (a[0].version, a[0], a[1]))


def reverse_zones(model: DnsModel) -> list[Zone]:
    """The reverse zones of the subnets (by rdns_mode), with PTRs and RFC 2317 glue."""
    wanted = [s for s in model.subnets if s.rdns_mode != "disabled"]
    zone_nets: dict[Network, list[Network]] = {}
    for sub in sorted(wanted, key=lambda s: (s.cidr.version, s.cidr)):
        for net in reverse_zone_networks(sub.cidr):
            zone_nets.setdefault(net, []).append(sub.cidr)
    glue_children = sorted(
        {s.cidr for s in wanted if s.rdns_mode == "rfc2317" and rfc2317_parent(s.cidr)}, key=lambda n: (n.version, n)
    )
    glue_only = set()
    for child in glue_children:
        parent = rfc2317_parent(child)
        assert parent is not None
        if not any(n.version == parent.version and parent.subnet_of(n) for n in zone_nets):  # type: ignore[arg-type]
            zone_nets[parent] = []
            glue_only.add(parent)
    addresses = _addresses(model)
    zones = []
    for net in sorted(zone_nets, key=lambda n: (n.version, n)):
        children = [c for c in glue_children if c.version == net.version and c != net and c.subnet_of(net)]  # type: ignore[arg-type]
        lines = [rfc2317_glue(c) for c in children]
        for ip, fqdn, ttl in addresses:
            if ip.version == net.version and ip in net and not any(ip in c for c in children):
                lines.append(f"{ptr_owner(ip, net)}{f' {ttl}' if ttl is not None else ''} IN PTR {fqdn}")
        zones.append(
            Zone(
                reverse_zone_name(net),
                model.default_ttl,
                tuple(lines),
                network=net,
                glue_only=net in glue_only,
                covers=tuple(zone_nets[net]),
            )
        )
    return zones


def zones(model: DnsModel) -> list[Zone]:
    """Every zone the region serves for `model` (validated first: InvalidDnsModel)."""
    validate(model)
    result = forward_zones(model) + reverse_zones(model)
    seen: dict[str, Zone] = {}
    for zone in result:
        if zone.name in seen:  # a domain named like a reverse zone: refuse rather than serve one
            raise InvalidDnsModel([f"domains: {zone.name} is also a reverse zone of a subnet"])
        seen[zone.name] = zone
    return result


def zone_names(model: DnsModel) -> tuple[str, ...]:
    """The zones a region serves for `model`: what the racks forward to the regions
    (`rack.dns.ResolverConfig.zones`)."""
    return tuple(z.name for z in zones(model))


def render_zone(zone: Zone, serial: int, ns_host: str) -> str:
    """The zone file of `zone` with SOA `serial`; `ns_host` is the NS name (the default domain)."""
    ns = ns_host.lower().rstrip(".") + "."
    refresh, retry, expire = SOA_TIMERS
    head = [
        f"; Zone {zone.name}, generated by metalplane: rewritten on every change.",
        f"$ORIGIN {zone.name}.",
        f"$TTL {zone.ttl}",
        f"@ IN SOA {ns} {SOA_RNAME} ( {serial} {refresh} {retry} {expire} {zone.ttl} )",
        f"@ IN NS {ns}",
    ]
    return "\n".join(head + list(zone.lines)) + "\n"
