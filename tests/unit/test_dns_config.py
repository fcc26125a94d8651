"""named.conf of the region's authoritative server and of the rack's resolver (pure renderers),
checked by BIND's own named-checkconf when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_address as A
from ipaddress import ip_network as N
from pathlib import Path

import pytest

from metalplane.dns.conf import Layout, address_list, quote, render_key
from metalplane.rack.dns.config import (
    InvalidResolverConfig,
    RegionDnsServer,
    ResolverConfig,
    parse_upstream_dns,
)
from metalplane.rack.dns.config import render as render_resolver
from metalplane.region.dns.config import AuthoritativeOptions
from metalplane.region.dns.config import render as render_authoritative

LAYOUT = Layout(Path("/srv/dns"), 5245)


def resolver(**kw) -> ResolverConfig:
    base = dict(
        zones=("maas", "0.50.10.in-addr.arpa"),
        regions=(RegionDnsServer(A("10.0.0.11")), RegionDnsServer(A("10.0.0.12"))),
        upstream_dns=(A("192.0.2.53"), A("2001:db8::53")),
        dnssec_validation="auto",
        listen=(A("10.50.0.2"), A("2001:db8:50::2")),
        allow=(N("10.50.0.0/24"), N("2001:db8:50::/64")),
    )
    base.update(kw)
    return ResolverConfig(**base)


def options_block(conf: str) -> list[str]:
    lines = conf.splitlines()
    start = lines.index("options {")
    return [ln.strip() for ln in lines[start + 1 : lines.index("};", start)]]


def test_shared_frame_private_directory_key_and_control_channel():
    conf = render_authoritative(LAYOUT, ["maas"], AuthoritativeOptions())
    assert 'include "/srv/dns/rndc.key";' in conf
    assert 'inet 127.0.0.1 port 5245 allow { 127.0.0.1; } keys { "metalplane-rndc"; };' in conf
    opts = options_block(conf)
    for line in (
        'directory "/srv/dns";',
        "pid-file none;",
        "session-keyfile none;",
        'managed-keys-directory "/srv/dns";',
        "version none;",
    ):
        assert line in opts


def test_authoritative_serves_its_zones_and_never_recurses():
    conf = render_authoritative(
        LAYOUT,
        ["maas", "0.50.10.in-addr.arpa"],
        AuthoritativeOptions(listen=(A("10.0.0.11"),), allow_query=(N("10.0.0.0/16"),)),
    )
    opts = options_block(conf)
    assert "listen-on port 5247 { 10.0.0.11; };" in opts and "listen-on-v6 port 5247 { none; };" in opts
    assert "recursion no;" in opts and "allow-query { 10.0.0.0/16; };" in opts and "notify no;" in opts
    assert conf.endswith(
        'zone "0.50.10.in-addr.arpa" { type primary; '
        'file "/srv/dns/zones/db.0.50.10.in-addr.arpa"; };\n'
        'zone "maas" { type primary; file "/srv/dns/zones/db.maas"; };\n'
    )
    every = options_block(render_authoritative(LAYOUT, [], AuthoritativeOptions()))
    assert "listen-on port 5247 { any; };" in every and "allow-query { any; };" in every


def test_resolver_forwards_maas_zones_to_every_region_and_the_rest_upstream():
    conf = render_resolver(LAYOUT, resolver())
    opts = options_block(conf)
    assert "listen-on port 53 { 127.0.0.1; 10.50.0.2; };" in opts
    assert "listen-on-v6 port 53 { 2001:db8:50::2; };" in opts
    assert "recursion yes;" in opts and 'allow-recursion { "trusted"; };' in opts
    assert "forwarders { 192.0.2.53; 2001:db8::53; };" in opts and "forward only;" in opts
    assert "dnssec-validation auto;" in opts
    assert 'validate-except { "0.50.10.in-addr.arpa"; "maas"; };' in opts
    assert 'acl "trusted" { 10.50.0.0/24; 2001:db8:50::/64; localhost; localnets; };' in conf
    assert (
        'zone "maas" { type forward; forward only; forwarders { 10.0.0.11 port 5247; 10.0.0.12 port 5247; }; };' in conf
    )


def test_resolver_serves_stale_answers_while_its_sources_are_unreachable():
    opts = options_block(render_resolver(LAYOUT, resolver()))
    assert "stale-cache-enable yes;" in opts and "stale-answer-enable yes;" in opts
    assert "max-stale-ttl 43200;" in opts
    assert "stale-answer-client-timeout 800;" in opts and "stale-refresh-time 30;" in opts


def test_resolver_without_upstream_resolves_itself_and_without_validation_lists_no_exceptions():
    opts = options_block(render_resolver(LAYOUT, resolver(upstream_dns=(), dnssec_validation="no")))
    assert not any(o.startswith(("forwarders", "forward ", "validate-except")) for o in opts)
    assert "dnssec-validation no;" in opts


def test_resolver_config_is_validated():
    with pytest.raises(InvalidResolverConfig) as err:
        render_resolver(LAYOUT, resolver(regions=(), dnssec_validation="maybe", zones=("ma as",), port=0))
    text = "\n".join(err.value.errors)
    for expected in ("zones[0]: 'ma as'", "regions: MAAS zones need", "dnssec_validation: 'maybe'", "port: 0"):
        assert expected in text


def test_upstream_dns_is_maas_s_string_of_addresses():
    assert parse_upstream_dns(" 192.0.2.1  192.0.2.2,2001:db8::1 ") == (
        A("192.0.2.1"),
        A("192.0.2.2"),
        A("2001:db8::1"),
    )
    assert parse_upstream_dns("") == ()
    with pytest.raises(ValueError, match=r"Invalid IP address: dns\.example\.com; provide a list"):
        parse_upstream_dns("192.0.2.1 dns.example.com")


def test_quoting_refuses_what_would_break_the_file():
    assert quote("maas") == '"maas"' and address_list([]) == "{ none; }"
    with pytest.raises(ValueError):
        quote('ma"as')


@pytest.mark.skipif(shutil.which("named-checkconf") is None, reason="bind9-utils not installed")
@pytest.mark.parametrize("which", ["authoritative", "resolver", "resolver-plain"])
def test_named_checkconf_accepts_what_we_render(tmp_path: Path, which: str):
    layout = Layout(tmp_path, 5245)
    layout.zones_dir.mkdir()
    layout.key_file.write_text(render_key("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="))
    if which == "authoritative":
        conf = render_authoritative(
            layout, ["maas", "0.50.10.in-addr.arpa"], AuthoritativeOptions(listen=(A("10.0.0.11"), A("::1")))
        )
    elif which == "resolver":
        conf = render_resolver(layout, resolver())
    else:
        conf = render_resolver(layout, resolver(zones=(), regions=(), upstream_dns=(), dnssec_validation="yes"))
    layout.conf.write_text(conf)
    out = subprocess.run(["named-checkconf", str(layout.conf)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
