"""chrony configuration from MAAS's rules, and chrony's own state (captured chronyc output)
judged into a service status: pure functions."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_network as N
from pathlib import Path

import pytest

from metalplane.ntp import (
    ChronyPaths,
    Source,
    judge,
    parse_ntp_servers,
    parse_sources,
    parse_tracking,
    rack_config,
    region_config,
    render,
)

# Captured from chronyc 4.3 (`chronyc -n -c ...`) against chronyd in the test lab.
TRACKING_SYNCED = (
    "0A480001,10.72.0.1,2,1796573473.180148521,0.000001783,-0.000000610,0.000008259,-0.698,"
    "-0.029,3.460,0.000025020,0.000010155,1.0,Normal\n"
)
TRACKING_LOCAL = (
    "7F7F0101,,8,1796572864.454421391,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,"
    "0.000000000,0.000000000,0.0,Normal\n"
)
SOURCES_SYNCED = (
    "^,*,10.72.0.1,1,0,377,0,-0.000000049,-0.000000607,0.000011748\n"
    "^,?,10.72.0.9,0,1,0,4294967295,0.000000000,0.000000000,0.000000000\n"
)
SOURCES_SILENT = (
    "^,*,10.72.0.1,1,0,370,5,-0.000000049,-0.000000607,0.000011748\n"
    "^,?,10.72.0.9,0,1,0,4294967295,0.000000000,0.000000000,0.000000000\n"
)
SOURCES_GONE = "^,?,10.60.0.1,8,1,0,13,0.000005352,0.000006099,0.000011126\n"
SOURCES_ORPHAN_UPSTREAM = "^,*,10.60.0.1,8,0,377,0,-0.000001117,-0.000002078,0.000013350\n"


def test_ntp_servers_is_maas_s_string_of_addresses_and_hostnames():
    assert parse_ntp_servers("ntp.ubuntu.com  10.0.0.1,2001:db8::1 ::ffff:192.0.2.1 Time.Example.") == (
        "ntp.ubuntu.com",
        "10.0.0.1",
        "2001:db8::1",
        "192.0.2.1",
        "time.example",
    )
    assert parse_ntp_servers("  ") == ()
    for bad in ("ntp..example", "-ntp.example", "300.1.1.1", "ntp_example.com"):
        with pytest.raises(ValueError, match="neither an IP address nor a hostname"):
            parse_ntp_servers(f"10.0.0.1 {bad}")


def test_a_region_follows_ntp_servers_and_peers_with_the_other_regions():
    cfg = region_config(
        ["ntp.ubuntu.com", "10.0.0.1"], other_regions=["10.1.0.12", "10.1.0.13"], allow=[N("10.50.0.0/24")]
    )
    assert [s.line() for s in cfg.sources] == [
        "pool ntp.ubuntu.com iburst",
        "server 10.0.0.1 iburst",
        "peer 10.1.0.12 xleave",
        "peer 10.1.0.13 xleave",
    ]
    assert cfg.stratum == 8 and cfg.allow == (N("10.50.0.0/24"),)


def test_a_rack_follows_every_region_unless_ntp_external_only():
    cfg = rack_config(["10.1.0.12", "10.1.0.11", "10.1.0.12"], ["ntp.ubuntu.com"])
    assert [s.line() for s in cfg.sources] == [
        "server 10.1.0.11 iburst minpoll 1 maxpoll 3",
        "server 10.1.0.12 iburst minpoll 1 maxpoll 3",
    ]
    assert cfg.stratum == 9
    external = rack_config(["10.1.0.11"], ["ntp.ubuntu.com", "10.0.0.1"], ntp_external_only=True)
    assert [s.line() for s in external.sources] == ["pool ntp.ubuntu.com iburst", "server 10.0.0.1 iburst"]


def test_chrony_conf_serves_its_subnets_with_a_private_command_socket():
    paths = ChronyPaths(Path("/srv/ntp"))
    text = render(rack_config(["10.1.0.11"], allow=[N("10.50.0.0/24"), N("2001:db8::/64")]), paths)
    assert text.splitlines()[1:] == [
        "server 10.1.0.11 iburst minpoll 1 maxpoll 3",
        "local stratum 9 orphan",
        "allow 10.50.0.0/24",
        "allow 2001:db8::/64",
        "cmdport 0",
        "bindcmdaddress /srv/ntp/run/chronyd.sock",
        "pidfile /srv/ntp/run/chronyd.pid",
    ]


@pytest.mark.skipif(shutil.which("chronyd") is None, reason="chrony not installed")
def test_chronyd_accepts_what_we_render(tmp_path: Path):
    paths = ChronyPaths(tmp_path)
    cfg = region_config(["ntp.example", "10.0.0.1"], ["10.1.0.12"], [N("10.50.0.0/24")])
    paths.conf.write_text(render(cfg, paths))
    out = subprocess.run(["chronyd", "-p", "-f", str(paths.conf)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert Source("x", "bogus").line() == "bogus x iburst"  # what the system test feeds chronyd to refuse


def test_parse_tracking_and_sources():
    synced = parse_tracking(TRACKING_SYNCED)
    assert (synced.ref_id, synced.ref_name, synced.stratum, synced.leap, synced.local) == (
        "0A480001",
        "10.72.0.1",
        2,
        "Normal",
        False,
    )
    assert parse_tracking(TRACKING_LOCAL).local
    sources = parse_sources(SOURCES_SYNCED)
    assert [(s.mode, s.state, s.name, s.stratum, s.reach, s.last_rx, s.answering) for s in sources] == [
        ("^", "*", "10.72.0.1", 1, 0o377, 0, True),
        ("^", "?", "10.72.0.9", 0, 0, 4294967295, False),
    ]
    with pytest.raises(ValueError):
        parse_tracking("506 Cannot talk to daemon")
    with pytest.raises(ValueError):
        parse_sources("garbage")


@pytest.mark.parametrize(
    "tracking, sources, status, words",
    [
        (TRACKING_SYNCED, SOURCES_SYNCED, "running", "synchronised to 10.72.0.1 (stratum 1); serving at stratum 2"),
        (TRACKING_SYNCED, SOURCES_SILENT, "degraded", "10.72.0.1 stopped answering (last reply 5s ago)"),
        (
            TRACKING_LOCAL,
            "",
            "degraded",
            "no time source answers (sources: none configured); serving its own clock at stratum 9 (orphan)",
        ),
        (TRACKING_LOCAL, SOURCES_GONE, "degraded", "10.60.0.1 unreachable"),
        (
            TRACKING_SYNCED.replace(",2,", ",9,", 1),
            SOURCES_ORPHAN_UPSTREAM,
            "degraded",
            "following 10.60.0.1, which has no time source itself (stratum 8)",
        ),
    ],
)
def test_judge(tracking: str, sources: str, status: str, words: str):
    got = judge(parse_tracking(tracking), parse_sources(sources), 9)
    assert got[0] == status and words in got[1], got
