"""Pure decisions of operating metalplane: units, the keeper's restart rules, log lines,
request lines, progress, the compatibility commands, database URIs, rack interfaces."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalplane.cli.compat import REGION_COMMANDS, complete_register, translate
from metalplane.cli.ops_cmd import log_commands, log_sources
from metalplane.cli.progress import Progress, bar_line, tenths_crossed
from metalplane.embedded.external_db import parse_database_uri
from metalplane.embedded.keeper import policy_from_unit, should_restart, start_limit_hit
from metalplane.embedded.units import (
    parse_unit,
    quote_arg,
    render_unit,
    split_command,
    systemd_escape_path,
    unit_names,
    units_for,
)
from metalplane.logs import LineFormatter, journal_stream_matches, priority, redact
from metalplane.rack.interfaces import parse_ip_addr
from metalplane.region.api.access_log import access_level, access_line, request_target

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def all_units(data_dir: str = "/srv/mp data"):
    return units_for(
        Path(data_dir),
        "/opt/venv/bin/python",
        region=True,
        rack=True,
        embedded_db=True,
        pg_bin=PG_BIN,
        pg_owner="postgres",
    )


# -- units --------------------------------------------------------------------------------


def test_default_data_dir_has_plain_unit_names_and_others_carry_their_path():
    plain = unit_names(Path("/var/lib/metalplane"))
    assert (plain.postgresql, plain.regiond, plain.rackd) == (
        "metalplane-postgresql.service",
        "metalplane-regiond.service",
        "metalplane-rackd.service",
    )
    assert unit_names(Path("/tmp/mp-1/data")).regiond == "metalplane-regiond-tmp-mp\\x2d1-data.service"


@pytest.mark.parametrize("path", ["/tmp/mp-init-abc/data", "/var/lib/my.data dir/x_y", "/.hidden/a", "/a//b/"])
def test_escape_matches_systemd_escape(path):
    expected = subprocess.run(
        ["systemd-escape", "--path", path], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert systemd_escape_path(Path(path)) == expected


def test_units_order_dependencies_and_stop_timeouts():
    pg, region, rack = all_units()
    region_text, rack_text, pg_text = render_unit(region), render_unit(rack), render_unit(pg)
    r = parse_unit(region_text)
    assert r["Unit"]["Wants"] == [f"network-online.target {pg.name}"]
    assert r["Unit"]["After"] == [f"network-online.target {pg.name}"]
    assert r["Service"]["Restart"] == ["on-failure"] and r["Service"]["KillMode"] == ["mixed"]
    assert r["Install"]["WantedBy"] == ["multi-user.target"]
    k = parse_unit(rack_text)
    # The rack orders after the local region but does not need it (degraded, not dead).
    assert k["Unit"]["Wants"] == ["network-online.target"]
    assert region.name in k["Unit"]["After"][0]
    # Room for in-flight power actions (75 s) and Kea's stop.
    assert int(k["Service"]["TimeoutStopSec"][0]) >= 90
    p = parse_unit(pg_text)
    assert p["Service"]["Type"] == ["notify"] and p["Service"]["User"] == ["postgres"]
    assert p["Service"]["KillSignal"] == ["SIGINT"]  # PostgreSQL's fast shutdown
    assert p["Service"]["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_external_database_means_no_postgresql_unit():
    units = units_for(Path("/d"), "/py", region=True, rack=False, embedded_db=False)
    assert [u.name for u in units] == ["metalplane-regiond-d.service"]
    assert "postgresql" not in render_unit(units[0])


def test_exec_start_round_trips_through_the_file():
    _, region, rack = all_units('/srv/100% mp/$HOME/"q"')
    for unit in (region, rack):
        text = render_unit(unit)
        assert policy_from_unit(text).argv == unit.exec_start


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1)))
def test_quoting_round_trips(args):
    words = ["/usr/bin/python3", *args]  # the executable is always an absolute path (no systemd prefix)
    assert split_command(" ".join(quote_arg(w) for w in words)) == words


def test_parse_unit_keeps_repeated_keys_and_refuses_garbage():
    text = "[Service]\nEnvironment=A=1\nEnvironment=B=2\n# comment\nExecStart=/bin/true \\\n  --flag\n"
    assert parse_unit(text)["Service"] == {"Environment": ["A=1", "B=2"], "ExecStart": ["/bin/true  --flag"]}
    with pytest.raises(ValueError):
        parse_unit("ExecStart=/bin/true\n")  # outside any section


# -- the keeper: systemd's restart rules -----------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "code", "expected"),
    [
        ("on-failure", 0, False),
        ("on-failure", 1, True),
        ("on-failure", -signal.SIGKILL, True),
        ("on-failure", -signal.SIGSEGV, True),
        ("on-failure", -signal.SIGTERM, False),
        ("on-failure", -signal.SIGINT, False),
        ("no", 1, False),
        ("always", 0, True),
    ],
)
def test_restart_rules_are_systemds(restart, code, expected):
    assert should_restart(restart, code) is expected


def test_start_limit():
    assert not start_limit_hit([0, 1, 2, 3], 4, interval=10, burst=5)
    assert start_limit_hit([0, 1, 2, 3, 4], 5, interval=10, burst=5)
    assert not start_limit_hit([0, 1, 2, 3, 4], 30, interval=10, burst=5)


def test_keeper_reads_the_policy_from_the_unit():
    policy = policy_from_unit(render_unit(all_units()[2]))
    assert policy.restart == "on-failure" and policy.restart_sec == 2
    assert policy.kill_signal == signal.SIGTERM and policy.timeout_stop_sec >= 90
    assert policy.env == {"PYTHONUNBUFFERED": "1"}
    assert (policy.start_limit_interval, policy.start_limit_burst) == (120, 10)
    with pytest.raises(Exception, match="Type=notify"):
        policy_from_unit(render_unit(all_units()[0]))  # PostgreSQL's unit is systemd's to run


# -- log lines ------------------------------------------------------------------------------


def test_redaction_masks_registered_values_and_credential_pairs():
    text = (
        "power_pass=hunter22 user=admin {'power_pass': 'x1y2'} url?token=abc&op=on the-shared-secret-value "
        "Authorization: OAuth oauth_signature=%26s"
    )
    out = redact(text, {"the-shared-secret-value"})
    for secret in ("hunter22", "x1y2", "oauth_signature", "abc", "the-shared-secret-value"):
        assert secret not in out
    assert "user=admin" in out and "op=on" in out
    assert redact("tests passed: 5; shared secret does not match") == "tests passed: 5; shared secret does not match"


def test_journal_lines_carry_the_priority_and_one_event_is_one_line():
    record = logging.LogRecord(
        "metalplane.rack", logging.WARNING, __file__, 1, "two\nlines database_pass=pw", None, None
    )
    line = LineFormatter("%(name)s %(message)s", journal=True).format(record)
    assert line == "<4>metalplane.rack two\\nlines database_pass=****"
    assert [priority(level) for level in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "\n" not in LineFormatter("%(message)s").format(record)


def test_journal_stream_detection():
    assert journal_stream_matches("8:1234", 8, 1234)
    assert not journal_stream_matches("8:1234", 8, 99)
    assert not journal_stream_matches(None, 8, 1234) and not journal_stream_matches("junk", 8, 1234)


def test_request_lines_keep_the_op_and_nothing_else_of_the_query():
    assert (
        request_target("/MAAS/api/2.0/machines/", b"op=power_on&power_pass=x") == "/MAAS/api/2.0/machines/?op=power_on"
    )
    assert request_target("/MAAS/api/2.0/users/", b"token=abc") == "/MAAS/api/2.0/users/"
    assert request_target("/x", b"op=a%20b") == "/x"
    assert access_line("10.0.0.1", "GET", "/p", 200, 0.0123) == "10.0.0.1 GET /p 200 12.3ms"
    assert access_level("/MAAS/metalplane/health", 200) == logging.DEBUG
    assert access_level("/MAAS/metalplane/health", 503) == logging.INFO


# -- progress -------------------------------------------------------------------------------


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere():
    assert bar_line(5, 10, "x", width=10) == "[#####.....]  50% x"
    assert tenths_crossed(0, 35, 100) == [10, 20, 30] and tenths_crossed(35, 36, 100) == []
    err, out = io.StringIO(), io.StringIO()
    steps = Progress(3, steps=True, stream=err, out=out, tty=False)
    steps.step("one")
    steps.say("message")
    steps.step("two")
    assert out.getvalue() == "[1/3] one\nmessage\n[2/3] two\n" and err.getvalue() == ""
    err = io.StringIO()
    amount = Progress(1000, bytes_=True, out=err, tty=False)
    amount.update(450, "upload")
    assert err.getvalue().splitlines() == [f"upload: {n}% (450 B of 1000 B)" for n in (10, 20, 30, 40)]
    tty = io.StringIO()
    bar = Progress(4, steps=True, stream=tty, out=io.StringIO(), tty=True)
    bar.step("migrating")
    bar.finish()
    assert tty.getvalue() == "\r\x1b[K[#######.....................]  25% [1/4] migrating\n"


# -- compatibility names ----------------------------------------------------------------------


def test_maas_region_names_map_onto_metalplane():
    assert translate(["local_config_set", "--database-host", "db1"], REGION_COMMANDS) == [
        "region",
        "local-config-set",
        "--database-host",
        "db1",
    ]
    assert translate(["nonsense"], REGION_COMMANDS) is None and translate([], REGION_COMMANDS) is None


def test_maas_rack_register_asks_on_a_terminal_and_reads_the_secret_from_stdin_elsewhere():
    asked = []
    argv = complete_register(
        ["rack", "register"],
        True,
        lambda p: asked.append(p) or "http://r:5240/MAAS",
        lambda p: asked.append(p) or "s3cret",
        lambda: "unused",
    )
    assert argv == ["rack", "register", "--url", "http://r:5240/MAAS", "--secret", "s3cret"]
    assert asked == ["MAAS region controller URL: ", "Secret (hex/base16 encoded): "]
    piped = complete_register(["rack", "register", "--url", "u"], False, None, None, lambda: "abc\n")
    assert piped[-2:] == ["--secret", "abc"]
    with pytest.raises(ValueError, match="--url URL is required"):
        complete_register(["rack", "register"], False, None, None, lambda: "abc")
    with pytest.raises(ValueError, match="shared secret is required"):
        complete_register(["rack", "register", "--url", "u"], False, None, None, lambda: "")


def test_database_uri():
    s = parse_database_uri("postgres://maas:p%40ss@db1:5433,db2:5433/maasdb")
    assert (s.hosts, s.port, s.name, s.user, s.password) == (["db1", "db2"], 5433, "maasdb", "maas", "p@ss")
    assert parse_database_uri("postgresql://u@h1:1,h2:2/n").hosts == ["h1:1", "h2:2"]
    with pytest.raises(ValueError):
        parse_database_uri("mysql://u@h/n")


def test_logs_come_from_files_without_systemd_and_the_journal_with_it(tmp_path):
    (tmp_path / "dhcp" / "vlan-5002").mkdir(parents=True)
    (tmp_path / "dhcp" / "vlan-5002" / "kea.log").write_text("x\n")
    files = log_sources(tmp_path, ["region", "dhcp"], systemd=False)
    assert [s.path.relative_to(tmp_path).as_posix() for s in files] == ["log/regiond.log", "dhcp/vlan-5002/kea.log"]
    assert log_commands(files, 20, follow=False) == [["tail", "-n", "20", str(files[1].path)]]  # region's not there
    journal = log_sources(Path("/var/lib/metalplane"), ["region", "rack"], systemd=True)
    assert log_commands(journal, 5, follow=True) == [
        [
            "journalctl",
            "--no-pager",
            "-n",
            "5",
            "-f",
            "-u",
            "metalplane-regiond.service",
            "-u",
            "metalplane-rackd.service",
        ]
    ]


# -- rack interfaces ------------------------------------------------------------------------


def link(name, kind=None, up=True, addresses=(), link_type="ether"):
    data = {
        "ifname": name,
        "link_type": link_type,
        "address": "52:54:00:00:00:01",
        "flags": ["BROADCAST", "UP"] if up else ["BROADCAST", "NOARP"],
        "addr_info": [
            {
                "family": "inet6" if ":" in a else "inet",
                "local": a.split("/")[0],
                "prefixlen": int(a.split("/")[1]),
                "scope": "global",
            }
            for a in addresses
        ],
    }
    if kind:
        data["linkinfo"] = {"info_kind": kind}
    return data


def test_a_stock_hosts_ifb_devices_are_not_modelled():
    sample = json.dumps(
        [
            link("lo", link_type="loopback", addresses=["127.0.0.1/8"]),
            link("ifb0", "ifb", up=False),
            link("ifb1", "ifb", up=False),
            link("eth0", addresses=["192.0.2.2/24", "fe80::1/64"]),
            link("dummy0", "dummy", up=False, addresses=["198.51.100.1/24"]),
            link("veth-up", "veth", addresses=["10.0.0.2/24"]),
            link("veth-ll", "veth", addresses=["fe80::2/64"]),
            link("br0", "bridge", up=False),
            link("bond0", "bond"),
            link("eth0.5", "vlan"),
        ]
    )
    out = {i["name"]: i for i in parse_ip_addr(sample)}
    assert sorted(out) == ["bond0", "br0", "eth0", "eth0.5", "veth-up"]
    assert out["veth-up"]["type"] == "physical" and out["br0"]["type"] == "bridge"
    assert out["eth0.5"]["type"] == "vlan" and not out["br0"]["enabled"]


@pytest.mark.parametrize("verb", ["set", "reset"])
def test_local_config_set_and_reset_without_a_key_name_the_keys(verb, tmp_path, capsys):
    from metalplane.cli.main import main

    assert main(["region", f"local-config-{verb}", "--data-dir", str(tmp_path)]) == 2
    said = capsys.readouterr().out
    assert said.startswith(f"nothing to {verb}; give one or more of: --maas-url --database-host")
    assert not any(tmp_path.iterdir())
