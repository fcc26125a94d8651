"""The rack's configuration (`rackd.conf` in its data dir), with MAAS's `maas_url` list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metalplane.config.files import ConfigError, load_model, read_yaml, validate_model, write_yaml_atomic
from metalplane.config.region import DEFAULT_DATA_DIR, _check_url

RACK_CONFIG_NAME = "rackd.conf"
CONFIG_MODE = 0o640


class RackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    maas_url: list[str] = Field(default_factory=lambda: ["http://localhost:5240/MAAS"], min_length=1)
    data_dir: str = str(DEFAULT_DATA_DIR)
    hostname: str | None = None
    debug: bool = False
    # Where the rack's own services listen (TFTP 69, HTTP 5248 as in MAAS).
    tftp_port: int = Field(69, ge=1, le=65535)
    http_port: int = Field(5248, ge=1, le=65535)
    bind_address: str = "0.0.0.0"
    # The rack's resolver and chronyd (port 0: this rack runs none of it), and whether it may
    # listen for ARP (the region's network_discovery setting says whether it does).
    dns_port: int = Field(53, ge=0, le=65535)
    dns_control_port: int = Field(5246, ge=1, le=65535)
    ntp_port: int = Field(123, ge=0, le=65535)
    discovery: bool = True
    # Boot-storm admission control (0: unlimited): image transfers over HTTP and TFTP
    # transfers at once, GetBootConfig calls to the region at once; past them machines
    # wait in line (HTTP: at most boot_hold_max seconds, then 503 + Retry-After; TFTP: as
    # long as the machine keeps retransmitting, skipped after min(10, boot_hold_max) s of silence).
    boot_http_transfers_max: int = Field(64, ge=0)
    boot_tftp_transfers_max: int = Field(1024, ge=0)
    boot_rpc_max: int = Field(64, ge=0)
    boot_hold_max: float = Field(30.0, gt=0)

    @field_validator("maas_url", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("maas_url")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [_check_url(v) for v in value]


def rack_config_path(data_dir: Path) -> Path:
    return data_dir / RACK_CONFIG_NAME


def load_rack_config(path: Path) -> RackConfig:
    if not path.exists():
        raise ConfigError(f"{path}: no such rack config (run `metalplane rack register --url URL --secret SECRET`)")
    return load_model(RackConfig, path)


def update_rack_config(path: Path, changes: dict[str, Any]) -> RackConfig:
    data = read_yaml(path)
    data.update(changes)
    config = validate_model(RackConfig, data, str(path))
    write_yaml_atomic(path, config.model_dump(exclude_none=True), CONFIG_MODE)
    return config
