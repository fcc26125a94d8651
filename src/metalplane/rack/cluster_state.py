"""What a rack remembers about the cluster it joined: its uuid and CA certificate.

Once these exist the rack refuses any other cluster (the seeds: moving a rack
between MAAS instances risks data loss) until `metalplane rack reset`.

It also remembers whether it was told to register (`metalplane rack register`,
or `init` for its local rack): only then may its next registration create
its record on the region. A rack that restarts keeps its system_id and finds
its record; one whose record was deleted meanwhile does not re-create itself
(the seeds' "a rack may re-register on reboot"), it stops and says why.
"""

from __future__ import annotations

import os
from pathlib import Path

from metalplane.identity import clear_system_id

CLUSTER_FILE = "cluster_uuid"
CA_FILE = "cluster-ca.pem"
REGISTER_FILE = "register-requested"
UNREGISTERED_FILE = "unregistered"


class ClusterState:
    """Read from `data_dir` once; kept in memory and written only when it changes, so
    the region link's loop never opens a file (a rack out of descriptors keeps its links)."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._uuid = _read(self.data_dir / CLUSTER_FILE).strip() or None
        self._ca_cert = _read(self.data_dir / CA_FILE) or None

    @property
    def uuid(self) -> str | None:
        return self._uuid

    @property
    def ca_cert(self) -> str | None:
        return self._ca_cert

    def remember(self, uuid: str, ca_cert: str) -> None:
        if (uuid, ca_cert) == (self._uuid, self._ca_cert):
            return
        for name, text in ((CA_FILE, ca_cert), (CLUSTER_FILE, uuid + "\n")):
            tmp = self.data_dir / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.data_dir / name)
        self._uuid, self._ca_cert = uuid, ca_cert

    @property
    def registration_requested(self) -> bool:
        return (self.data_dir / REGISTER_FILE).exists()

    def request_registration(self) -> None:
        """The next registration may create this rack's record (and the old refusal is moot)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / REGISTER_FILE).touch()
        (self.data_dir / UNREGISTERED_FILE).unlink(missing_ok=True)

    def registration_done(self) -> None:
        (self.data_dir / REGISTER_FILE).unlink(missing_ok=True)

    def note_unregistered(self, line: str) -> None:
        """Why the rack stopped: its record is gone and it was not told to register (for `status`)."""
        (self.data_dir / UNREGISTERED_FILE).write_text(line + "\n")

    @property
    def unregistered(self) -> str | None:
        return _read(self.data_dir / UNREGISTERED_FILE).strip() or None

    def forget(self) -> None:
        """`rack reset`: leave the cluster; the next registration makes a new rack."""
        for name in (CLUSTER_FILE, CA_FILE):
            (self.data_dir / name).unlink(missing_ok=True)
        self._uuid = self._ca_cert = None
        clear_system_id(self.data_dir)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
