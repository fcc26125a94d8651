"""What a rack remembers about the cluster it joined: its uuid and CA certificate.

Once these exist the rack refuses any other cluster (the seeds: moving a rack
between MAAS instances risks data loss) until `metalplane rack reset`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from metalplane.identity import clear_system_id

CLUSTER_FILE = "cluster_uuid"
CA_FILE = "cluster-ca.pem"


@dataclass(frozen=True)
class ClusterState:
    data_dir: Path

    @property
    def uuid(self) -> str | None:
        try:
            return (self.data_dir / CLUSTER_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    @property
    def ca_cert(self) -> str | None:
        try:
            return (self.data_dir / CA_FILE).read_text() or None
        except FileNotFoundError:
            return None

    def remember(self, uuid: str, ca_cert: str) -> None:
        for name, text in ((CA_FILE, ca_cert), (CLUSTER_FILE, uuid + "\n")):
            tmp = self.data_dir / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.data_dir / name)

    def forget(self) -> None:
        """`rack reset`: leave the cluster; the next registration makes a new rack."""
        for name in (CLUSTER_FILE, CA_FILE):
            (self.data_dir / name).unlink(missing_ok=True)
        clear_system_id(self.data_dir)
