"""What the typed contract costs per call: encode + decode of the largest messages,
against msgpack alone (the untyped dicts before the contract).

    .venv/bin/python bench/rpc_codec_bench.py [--rounds 200]

Each figure is the median over rounds of one full trip of the value: the
sender's `wire.encode` and msgpack packing, the receiver's unpacking and
`wire.decode` (validation included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from metalplane.rpc import wire
from metalplane.rpc.dhcp import DhcpState
from metalplane.rpc.messages import Endpoints, Register, ReportLeases


def lease_batch(n: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": i,
                "key": f"{i:024x}",
                "action": "commit",
                "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                "mac": f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "client_id": None,
                "hostname": f"node{i}",
                "subnet_id": 1,
                "lease_time": 600,
                "expires": 1_800_000_000 + i,
                "cltt": 1_799_999_400 + i,
                "instance": "standalone",
                "time": 1_799_999_400.5,
            }
            for i in range(n)
        ]
    }


def dhcp_state(vlans: int, hosts: int) -> dict[str, Any]:
    return {
        "server_name": "rack1",
        "vlans": [
            {
                "vlan_id": 5000 + v,
                "vid": v,
                "mtu": 1500,
                "interface": f"eth{v}",
                "self_address": f"10.{v}.0.2",
                "role": "primary",
                "mode": "hot-standby",
                "peer": {"name": "rack2", "address": f"10.{v}.0.3"},
                "subnets": [
                    {
                        "subnet_id": v + 1,
                        "cidr": f"10.{v}.0.0/16",
                        "gateway_ip": f"10.{v}.0.1",
                        "dns_servers": [f"10.{v}.0.2"],
                        "ntp_servers": [f"10.{v}.0.2"],
                        "domain_name": "maas",
                        "pools": [[f"10.{v}.1.0", f"10.{v}.200.255"]],
                        "reserved": [[f"10.{v}.100.0", f"10.{v}.100.255"]],
                        "lease_time": 600,
                    }
                ],
            }
            for v in range(vlans)
        ],
        "hosts": [
            {"mac": f"52:54:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", "hostname": f"m{i}", "ip": None}
            for i in range(hosts)
        ],
        "problems": [],
    }


CASES: list[tuple[str, Any, Callable[[], dict[str, Any]]]] = [
    (
        "Register, 8 interfaces",
        Register,
        lambda: {
            "hostname": "rack1",
            "version": "0.1.0",
            "interfaces": [
                {
                    "name": f"eth{i}",
                    "mac": f"52:54:00:00:00:{i:02x}",
                    "type": "physical",
                    "enabled": True,
                    "addresses": [f"10.{i}.0.2/16", f"fd00:{i}::2/64"],
                }
                for i in range(8)
            ],
        },
    ),
    (
        "Endpoints, 2 regions x 4 workers",
        Endpoints,
        lambda: {
            "endpoints": [
                {"region": f"r{r}", "worker": w, "host": f"10.0.0.{r}", "port": 5250 + w}
                for r in range(2)
                for w in range(4)
            ],
            "targets": [{"region": "r0", "worker": 1, "host": "10.0.0.0", "port": 5251}],
        },
    ),
    ("ReportLeases, 500 events", ReportLeases, lambda: lease_batch(500)),
    ("DhcpState, 20 HA VLANs, 1,000 hosts", DhcpState, lambda: dhcp_state(20, 1000)),
]


def median_ms(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print("| value | msgpack only (ms) | typed: encode + msgpack + decode (ms) |")
    print("| --- | ---: | ---: |")
    for label, tp, make in CASES:
        raw = make()
        typed = wire.decode(tp, raw)
        plain = median_ms(
            lambda raw=raw: msgpack.unpackb(msgpack.packb(raw, use_bin_type=True), raw=False), args.rounds
        )
        full = median_ms(
            lambda tp=tp, typed=typed: wire.decode(
                tp, msgpack.unpackb(msgpack.packb(wire.encode(typed, tp), use_bin_type=True), raw=False)
            ),
            args.rounds,
        )
        print(f"| {label} | {plain:.3f} | {full:.3f} |")


if __name__ == "__main__":
    main()
