"""A DNS lab for tests and bench/: regions, a rack, an upstream BIND and a client, each
in its own network namespace, running the real services (`AuthoritativeDns`,
`RackResolver`) and queried with the real `dig`.

    with Lab() as lab:
        dl = DnsLab(lab, regions=2)
        await dl.start(model)                  # every region serves `model`, the rack forwards to them
        dl.dig("node1.maas")                   # Answer(status="NOERROR", data=["10.70.0.5"])
        await dl.publish(new_model)            # what the wiring will do on a commit
        await dl.stop()

Networks: ``mgmt`` 10.70.1.0/24 (regions .11, .12..., the rack .2, upstream .99)
and ``pxe`` 10.70.0.0/24 (the rack .2 and the client .50): the client reaches
nothing but its rack. The upstream BIND is authoritative for `OUTSIDE_DOMAIN`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from dataclasses import dataclass

from metalplane.rack.dns import RackResolver, RegionDnsServer, ResolverConfig
from metalplane.region.dns import (
    AuthoritativeDns,
    AuthoritativeOptions,
    DnsApplied,
    DnsModel,
    Domain,
    Record,
    zone_names,
)
from metalplane.supervised import prefix_wrap
from tests.support.netlab import Host, Lab

MGMT, PXE = "10.70.1.0/24", "10.70.0.0/24"
RACK_MGMT, RACK_PXE, UPSTREAM, CLIENT = "10.70.1.2", "10.70.0.2", "10.70.1.99", "10.70.0.50"
OUTSIDE_DOMAIN = "example.test"
OUTSIDE_NAME, OUTSIDE_ADDRESS = "www.example.test", "192.0.2.80"
_STATUS_RE = re.compile(r"status: ([A-Z]+)")


@dataclass(frozen=True)
class Answer:
    status: str  #: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, or "TIMEOUT"
    data: list[str]  #: the answer section's data, in order


def region_address(i: int) -> str:
    return f"10.70.1.{11 + i}"


def dig(host: Host, server: str, name: str, rtype: str = "A", port: int = 53, timeout: float = 1.0) -> Answer:
    """One query with the real dig, from `host`, one try."""
    out = host.run(
        [
            "dig",
            f"@{server}",
            "-p",
            str(port),
            f"+time={max(1, int(timeout))}",
            "+tries=1",
            "+nocookie",
            "+noall",
            "+answer",
            "+comments",
            name,
            rtype,
        ],
        check=False,
        timeout=30,
    ).stdout
    m = _STATUS_RE.search(out)
    if m is None:
        return Answer("TIMEOUT", [])
    data = [
        ln.split(None, 4)[4] for ln in out.splitlines() if ln and not ln.startswith(";") and len(ln.split(None, 4)) == 5
    ]
    return Answer(m.group(1), data)


class DnsLab:
    """Hosts and services of a DNS lab in `lab` (see the module docstring)."""

    def __init__(self, lab: Lab, regions: int = 2, threads: int | None = 1):
        self.lab = lab
        lab.add_network("mgmt", MGMT)
        lab.add_network("pxe", PXE)
        self.region_hosts = [
            lab.add_host(f"region{i + 1}", {"mgmt": f"{region_address(i)}/24"}) for i in range(regions)
        ]
        self.rack = lab.add_host("rack", {"mgmt": f"{RACK_MGMT}/24", "pxe": f"{RACK_PXE}/24"})
        self.upstream = lab.add_host("upstream", {"mgmt": f"{UPSTREAM}/24"})
        self.client = lab.add_host("client", {"pxe": f"{CLIENT}/24"})
        self.regions = [
            AuthoritativeDns(
                lab.workdir / f"dns-{h.name}",
                wrap=prefix_wrap(h.command([])),
                threads=threads,
                options=AuthoritativeOptions(
                    listen=(ipaddress.ip_address(region_address(i)), ipaddress.ip_address("127.0.0.1"))
                ),
            )
            for i, h in enumerate(self.region_hosts)
        ]
        self.outside = AuthoritativeDns(
            lab.workdir / "dns-upstream",
            wrap=prefix_wrap(self.upstream.command([])),
            threads=threads,
            options=AuthoritativeOptions(port=53),
        )
        self.resolver = RackResolver(lab.workdir / "dns-rack", wrap=prefix_wrap(self.rack.command([])), threads=threads)
        self.dnssec_validation = "no"

    @staticmethod
    def outside_model() -> DnsModel:
        return DnsModel(
            domains=(Domain(OUTSIDE_DOMAIN, (Record("www", "A", OUTSIDE_ADDRESS),)),),
            default_domain=OUTSIDE_DOMAIN,
            nameservers=(ipaddress.ip_address(UPSTREAM),),
        )

    def resolver_config(self, model: DnsModel) -> ResolverConfig:
        """What the wiring will send the rack: the model's zones, every region, the upstream."""
        return ResolverConfig(
            zones=zone_names(model),
            regions=tuple(RegionDnsServer(ipaddress.ip_address(region_address(i))) for i in range(len(self.regions))),
            upstream_dns=(ipaddress.ip_address(UPSTREAM),),
            dnssec_validation=self.dnssec_validation,
            listen=(ipaddress.ip_address(RACK_PXE),),
            allow=(ipaddress.ip_network(PXE),),
        )

    async def start(self, model: DnsModel, dnssec_validation: str = "no") -> None:
        self.dnssec_validation = dnssec_validation
        await asyncio.gather(self.outside.apply(self.outside_model()), *(r.apply(model) for r in self.regions))
        await self.resolver.apply(self.resolver_config(model))

    async def publish(self, model: DnsModel) -> list[DnsApplied]:
        """A commit reaching DNS: every region serves `model`, the rack forwards its zones and
        forgets what it cached of the changed ones. Regions whose named is down are skipped."""
        results = await asyncio.gather(*(r.apply(model) for r in self.regions), return_exceptions=True)
        applied = [r for r in results if isinstance(r, DnsApplied)]
        if not applied:
            raise next(r for r in results if isinstance(r, BaseException))
        changed = sorted({z for a in applied for z in a.changed})
        await self.resolver.apply(self.resolver_config(model))
        if changed:
            await self.resolver.flush(changed)
        return applied

    def dig(self, name: str, rtype: str = "A", server: str = RACK_PXE, port: int = 53) -> Answer:
        return dig(self.client, server, name, rtype, port)

    async def adig(self, name: str, rtype: str = "A", server: str = RACK_PXE, port: int = 53) -> Answer:
        return await asyncio.to_thread(dig, self.client, server, name, rtype, port)

    async def until_answer(
        self, name: str, expected: list[str], rtype: str = "A", timeout: float = 10.0, interval: float = 0.02
    ) -> float:
        """Seconds until the client gets `expected` for `name` through the rack; TimeoutError
        with the last answer otherwise."""
        t0 = time.monotonic()
        while True:
            got = await self.adig(name, rtype)
            if got.status == "NOERROR" and sorted(got.data) == sorted(expected):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{name} {rtype}: still {got} after {timeout}s, want {expected}")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        await asyncio.gather(
            self.resolver.stop(), self.outside.stop(), *(r.stop() for r in self.regions), return_exceptions=True
        )
