"""`metalplane region haproxy-config`: the seeds' shape, fast failover, and `haproxy -c` agrees."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from metalplane.cli.main import main
from metalplane.region import haproxy
from metalplane.region.api.routes import HEALTH_PATH
from metalplane.region.haproxy import HaproxyConfigError, RegionServer, Timing, parse_server, render_config

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current = line.strip()
            out[current] = []
        else:
            out[current].append(line.strip())
    return out


def test_server_specs():
    assert parse_server("10.0.0.1", 1) == RegionServer("region1", "10.0.0.1", 5240)
    assert parse_server("10.0.0.2:80", 2) == RegionServer("region2", "10.0.0.2", 80)
    assert parse_server("api-1=maas1.example.com", 3) == RegionServer("api-1", "maas1.example.com", 5240)
    assert parse_server("[fd00::5]:5240", 4).address == "[fd00::5]:5240"
    assert parse_server("fd00::5", 5).address == "[fd00::5]:5240"
    for bad in ("", "10.0.0.1:http", "10.0.0.1:0", "a b", "bad name=10.0.0.1", "[fd00::5]x", "[zz::1]:1"):
        with pytest.raises(ValueError):
            parse_server(bad, 1)


def test_the_seeds_shape_with_its_settings_where_haproxy_reads_them():
    text = render_config([parse_server("10.0.0.1", 1), parse_server("10.0.0.2", 2)])
    s = sections(text)
    assert s["frontend maas"][:2] == ["bind *:80", "option http-server-close"]
    assert "default_backend maas" in s["frontend maas"]
    # retries/redispatch are backend settings: HAProxy ignores them in a frontend (where the seeds put them).
    assert not any(line.startswith(("retries", "option redispatch")) for line in s["frontend maas"])
    backend = s["backend maas"]
    for line in (
        "balance source",
        "hash-type consistent",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response response-timeout",
        "http-request disable-l7-retry unless { method GET HEAD }",
        "option httpchk",
        f"http-check send meth GET uri {HEALTH_PATH}",
        "http-check expect status 200",
        "server region1 10.0.0.1:5240 check",
        "server region2 10.0.0.2:5240 check",
    ):
        assert line in backend, line
    default_server = next(line for line in backend if line.startswith("default-server"))
    assert "inter 1s" in default_server and "fall 2" in default_server and "rise 2" in default_server
    assert "observe layer4" in default_server and "on-error mark-down" in default_server
    assert "timeout server 90s" in s["defaults"]
    # While no region has a writable database, requests still reach a live region, which waits for it.
    assert "use_backend maas_nodb if { nbsrv(maas) eq 0 }" in s["frontend maas"]
    assert "option httpchk" not in s["backend maas_nodb"]
    assert "server region1 10.0.0.1:5240 check" in s["backend maas_nodb"]


def test_options():
    text = render_config(
        [parse_server("10.0.0.1", 1)],
        "127.0.0.1:8080",
        nodb_backend=False,
        stats_socket="/run/haproxy/admin.sock",
        log_target="/dev/log",
        timing=Timing(inter="2s", fall=3),
    )
    s = sections(text)
    assert "bind 127.0.0.1:8080" in s["frontend maas"]
    assert "backend maas_nodb" not in s and not any("nbsrv" in line for line in s["frontend maas"])
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in s["global"]
    assert "log /dev/log local0" in s["global"] and "option httplog" in s["defaults"]
    assert "inter 2s" in text and "fall 3" in text
    with pytest.raises(HaproxyConfigError):
        render_config([])
    with pytest.raises(HaproxyConfigError):
        render_config([parse_server("a=10.0.0.1", 1), parse_server("a=10.0.0.2", 2)])
    with pytest.raises(HaproxyConfigError):
        render_config([parse_server("10.0.0.1", 1)], "*: 80")


def test_health_path_is_the_regions():
    assert haproxy.HEALTH_PATH == HEALTH_PATH


@needs_haproxy
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"nodb_backend": False},
        {"stats_socket": "/tmp/mp-haproxy-test.sock", "log_target": "stderr"},
        {"bind": "127.0.0.1:18080", "backend": "api"},
    ],
)
def test_haproxy_c_accepts_it(tmp_path, kwargs):
    servers = [parse_server("10.0.0.1", 1), parse_server("b=10.0.0.2:5240", 2), parse_server("[fd00::3]", 3)]
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_config(servers, **kwargs))
    proc = subprocess.run(["haproxy", "-c", "-f", str(path)], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Configuration file is valid" in proc.stdout
    assert "WARNING" not in proc.stdout + proc.stderr


@needs_haproxy
def test_cli_prints_a_checked_config(capsys, tmp_path):
    assert (
        main(
            [
                "region",
                "haproxy-config",
                "--region",
                "10.0.0.1",
                "--region",
                "10.0.0.2:5240",
                "--bind",
                "127.0.0.1:8080",
                "--check",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out == render_config([parse_server("10.0.0.1", 1), parse_server("10.0.0.2:5240", 2)], "127.0.0.1:8080")
    target = tmp_path / "haproxy.cfg"
    assert main(["region", "haproxy-config", "--region", "10.0.0.1", "-o", str(target)]) == 0
    assert target.read_text().startswith("# Generated by `metalplane region haproxy-config`")
    assert main(["region", "haproxy-config", "--region", "10.0.0.1:99999"]) != 0
    err = capsys.readouterr().err
    assert "bad region address '10.0.0.1:99999': bad port '99999'" in err and len(err.strip().splitlines()) == 1
