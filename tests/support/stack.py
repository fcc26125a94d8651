"""A whole metalplane inside a netlab: regions and racks as real processes in
network namespaces, PostgreSQL reached over its unix socket.

The test process stays in the host namespace and never routes into the lab:
API calls go through the `metalplane` CLI run inside the region's namespace
(exactly the commands an operator types), and Kea's control sockets are
plain files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.config.region import RegionConfig, save_region_config
from metalplane.identity import read_system_id, write_secret
from metalplane.region.bootstrap import ensure_admin, run_db
from metalplane.region.services import cluster
from tests.support.databases import TestDatabases
from tests.support.netlab import Host, Lab, NetnsProcess
from tests.support.processes import wait_until

PYTHON = [sys.executable, "-m", "metalplane"]


class StackError(AssertionError):
    pass


class Stack:
    def __init__(self, lab: Lab, databases: TestDatabases, dbname: str | None = None):
        self.lab = lab
        self.databases = databases
        self.dbname = dbname or databases.new_database()
        self.root = lab.new_workdir("stack")
        self.regions: dict[str, tuple[Host, RegionConfig, NetnsProcess]] = {}
        self.racks: dict[str, tuple[Host, Path, NetnsProcess | None]] = {}
        self.api_key = ""
        self.secret = ""
        self.profiles = self.root / "profiles.json"
        self.cli_host: Host | None = None
        self.url = ""

    # -- regions ---------------------------------------------------------------------

    def start_region(
        self, host: Host, network: str, name: str = "region", num_workers: int = 2, port: int = 5240
    ) -> RegionConfig:
        address = host.ip(network)
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self.databases.config(
            self.dbname,
            port=port,
            rpc_port=port + 10,
            num_workers=num_workers,
            listen_address="0.0.0.0",
            data_dir=str(data_dir),
            maas_url=f"http://{address}:{port}/MAAS",
            hostname=name,
        )
        save_region_config(data_dir / "regiond.conf", config)
        self._run_region(name, host, config)
        if not self.api_key:
            self.api_key = run_db(config, _make_admin)
            self.secret = run_db(config, cluster.shared_secret)
            self.cli_host, self.url = host, f"http://{address}:{port}/MAAS/"
            self.cli("login", "admin", self.url, self.api_key)
        return config

    def _run_region(self, name: str, host: Host, config: RegionConfig) -> None:
        data_dir = Path(config.data_dir)
        proc = host.spawn(
            [*PYTHON, "region", "run", "--config", str(data_dir / "regiond.conf")], log=data_dir / "regiond.log"
        )
        self.regions[name] = (host, config, proc)
        self._wait_http(host, f"{config.maas_url.rstrip('/')}/api/2.0/version/", proc, name)

    def stop_region(self, name: str) -> None:
        """SIGTERM: the region stops its workers, named and chronyd."""
        host, _, proc = self.regions[name]
        host.stop(proc, timeout=20)

    def restart_region(self, name: str) -> None:
        host, config, _ = self.regions[name]
        self._run_region(name, host, config)

    def _wait_http(self, host: Host, url: str, proc: NetnsProcess, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{name} exited:\n{proc.log()[-3000:]}")
            try:
                if (
                    host.run(["curl", "-sf", "-m", "10", "-o", "/dev/null", url], check=False, timeout=15).returncode
                    == 0
                ):
                    return
            except subprocess.TimeoutExpired:
                pass  # a loaded machine: ask again until the deadline
            time.sleep(0.3)
        raise StackError(f"{name} did not answer at {url}:\n{proc.log()[-3000:]}")

    # -- racks -------------------------------------------------------------------------

    def add_rack(self, host: Host, name: str, urls: list[str] | None = None) -> Path:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        write_secret(data_dir, self.secret)
        update_rack_config(
            rack_config_path(data_dir),
            {
                "maas_url": urls or [self.url],
                "data_dir": str(data_dir),
                "hostname": name,
                "tftp_port": 69,
                "http_port": 5248,
            },
        )
        self.racks[name] = (host, data_dir, None)
        return data_dir

    def start_rack(self, name: str) -> NetnsProcess:
        host, data_dir, _ = self.racks[name]
        proc = host.spawn([*PYTHON, "rack", "run", "--data-dir", str(data_dir)], log=data_dir / "rackd.log")
        self.racks[name] = (host, data_dir, proc)
        return proc

    def rack_system_id(self, name: str) -> str | None:
        return read_system_id(self.racks[name][1])

    def rack_log(self, name: str) -> str:
        try:
            return (self.racks[name][1] / "rackd.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- the API, through the CLI in the region's namespace ---------------------------

    def env(self) -> dict[str, str]:
        return {"METALPLANE_PROFILES": str(self.profiles), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def cli(self, *args: str, check: bool = True):
        assert self.cli_host is not None
        result = self.cli_host.run([*PYTHON, *args], check=False, env=self.env(), timeout=60)
        if check and result.returncode != 0:
            raise StackError(
                f"metalplane {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def api(self, *args: str) -> Any:
        """`metalplane admin HANDLER ACTION ...` -> parsed JSON."""
        out = self.cli("admin", *args).stdout
        return json.loads(out) if out.strip() else None

    def shell(self, script: str, check: bool = True):
        """Run a shell script in the region's namespace, with `metalplane` and `$PROFILE`."""
        assert self.cli_host is not None
        prelude = f'metalplane() {{ {" ".join(PYTHON)} "$@"; }}\nPROFILE=admin\n'
        result = self.cli_host.run(
            ["bash", "-euo", "pipefail", "-c", prelude + script], check=False, env=self.env(), timeout=120
        )
        if check and result.returncode != 0:
            raise StackError(f"script failed ({result.returncode}):\n{script}\n{result.stdout}\n{result.stderr}")
        return result

    # -- common set-ups ------------------------------------------------------------------

    def import_image(self, mirror: Path, timeout: float = 180) -> None:
        """`boot-resources import path=MIRROR`, then wait until a set is complete."""
        self.cli("admin", "boot-resources", "import", f"path={mirror}")
        wait_until(
            lambda: (
                not self.api("boot-resources", "is-importing")
                and any(
                    s["complete"]
                    for r in self.api("boot-resources", "read")
                    for s in self.api("boot-resource", "read", str(r["id"]))["sets"].values()
                )
            ),
            timeout,
            what="the image",
        )

    def serve_dhcp(self, cidr: str, start_ip: str, end_ip: str, rack: str) -> None:
        """The seeds' CLI sequence: a dynamic range on the subnet, DHCP on its VLAN from `rack`."""
        self.shell(f"""
            fabric=$(metalplane $PROFILE subnets read | jq -r '.[] | select(.cidr == "{cidr}") | .vlan.fabric_id')
            vid=$(metalplane $PROFILE subnets read | jq -r '.[] | select(.cidr == "{cidr}") | .vlan.vid')
            metalplane $PROFILE ipranges create type=dynamic start_ip={start_ip} end_ip={end_ip}
            metalplane $PROFILE vlan update $fabric $vid primary_rack={rack} dhcp_on=true
        """)


def region_and_two_racks(lab: Lab, databases: TestDatabases, cidr: str) -> tuple[Stack, Host, dict[str, Host]]:
    """A region (.10) and racks rack1 (.2) and rack2 (.3) on one network `pxe` of `cidr`
    (a /24), both registered."""
    prefix = cidr.rsplit(".", 1)[0]
    lab.add_network("pxe", cidr)
    region = lab.add_host("region", {"pxe": f"{prefix}.10/24"})
    racks = {name: lab.add_host(name, {"pxe": f"{prefix}.{n}/24"}) for n, name in ((2, "rack1"), (3, "rack2"))}
    stack = Stack(lab, databases)
    stack.start_region(region, "pxe")
    for name, host in racks.items():
        stack.add_rack(host, name)
        stack.start_rack(name)
    wait_until(lambda: len(stack.api("rack-controllers", "read")) == 2, 30, what="both racks registered")
    return stack, region, racks


async def _make_admin(conn) -> str:
    key, _ = await ensure_admin(conn, "admin", "admin-password", "admin@example.com", "lab")
    return key
