"""The region's local configuration (`regiond.conf`), with MAAS's key names."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metalplane.config.files import (
    ConfigError,
    load_model,
    read_yaml,
    validate_model,
    write_yaml_atomic,
)
from metalplane.hostport import split_host_port

DEFAULT_DATA_DIR = Path("/var/lib/metalplane")
REGION_CONFIG_NAME = "regiond.conf"
CONFIG_MODE = 0o640
# Connections one worker may hold: its bounded SQLAlchemy pool plus one
# dedicated LISTEN connection. The supervisor holds one more for the region.
DEFAULT_POOL_SIZE = 8
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


class RegionConfig(BaseModel):
    """Every key MAAS's regiond.conf has that metalplane uses, plus a few of ours.

    Unknown keys are refused so that a typo is not silently ignored.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    maas_url: str = "http://localhost:5240/MAAS"
    database_host: str | list[str] = "localhost"
    database_port: int = Field(5432, ge=1, le=65535)
    database_name: str = Field("maasdb", min_length=1)
    database_user: str = Field("maas", min_length=1)
    database_pass: str = ""
    num_workers: int = Field(4, ge=1, le=64)
    debug: bool = False
    # metalplane's own keys.
    port: int = Field(5240, ge=1, le=65535)
    rpc_port: int = Field(5250, ge=1, le=65535)
    listen_address: str = "0.0.0.0"
    data_dir: str = str(DEFAULT_DATA_DIR)
    hostname: str | None = None
    database_pool_size: int = Field(DEFAULT_POOL_SIZE, ge=1, le=100)
    balance_threshold: float = Field(1.25, gt=1.0, le=10.0)
    # Each rack keeps this many RPC connections, each to a different region.
    rpc_connections_per_rack: int = Field(2, ge=1, le=16)
    # The region's named (authoritative, racks forward to it) and chronyd (docs/architecture.md,
    # "Port plan"); port 0: this region runs none of it.
    dns_port: int = Field(5247, ge=0, le=65535)
    dns_control_port: int = Field(5245, ge=1, le=65535)
    ntp_port: int = Field(123, ge=0, le=65535)
    # Addresses (or CIDRs) of the proxies in front of the region (HAProxy): only
    # their X-Forwarded-For/-Host/-Proto headers are believed. Loopback by default,
    # so a proxy on the region's own host works; add the HAProxy hosts otherwise.
    trusted_proxies: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUSTED_PROXIES))

    @field_validator("maas_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("database_host")
    @classmethod
    def _hosts(cls, value: str | list[str]) -> str | list[str]:
        hosts = [value] if isinstance(value, str) else value
        if not hosts or any(not h.strip() for h in hosts):
            raise ValueError("must be a host name, a socket directory, or a non-empty list of them")
        for host in hosts:
            if not host.startswith("/"):
                try:
                    split_host_port(host, 5432)
                except ValueError as exc:
                    raise ValueError(f"{host!r}: {exc} (HOST, HOST:PORT, [V6]:PORT or /socket/dir)") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or a CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return [entry.strip() for entry in value]

    @property
    def database_hosts(self) -> list[str]:
        return [self.database_host] if isinstance(self.database_host, str) else list(self.database_host)

    def connections_per_worker(self) -> int:
        return self.database_pool_size + 1

    def connections_needed(self) -> int:
        """What this region can hold open at peak: every worker, plus the supervisor's one
        and its LISTEN connection (for its named and chronyd)."""
        return self.num_workers * self.connections_per_worker() + 2


def region_config_path(data_dir: Path | None = None, config: Path | None = None) -> Path:
    if config is not None:
        return config
    env = os.environ.get("METALPLANE_REGION_CONFIG")
    if env and data_dir is None:
        return Path(env)
    return (data_dir or DEFAULT_DATA_DIR) / REGION_CONFIG_NAME


def load_region_config(path: Path) -> RegionConfig:
    if not path.exists():
        raise ConfigError(
            f"{path}: no such config file (run `metalplane init` or `metalplane region local-config-set`)"
        )
    return load_model(RegionConfig, path)


def update_region_config(path: Path, changes: dict[str, Any]) -> RegionConfig:
    """Validate the merged result first; the file is untouched if anything is wrong."""
    data = read_yaml(path)
    data.update(changes)
    config = validate_model(RegionConfig, data, str(path))
    write_yaml_atomic(path, config.model_dump(include=set(data)), CONFIG_MODE)
    return config


def reset_region_config(path: Path, keys: list[str]) -> RegionConfig:
    data = read_yaml(path)
    for key in keys:
        data.pop(key, None)
    config = validate_model(RegionConfig, data, str(path))
    write_yaml_atomic(path, data, CONFIG_MODE)
    return config


def save_region_config(path: Path, config: RegionConfig) -> None:
    write_yaml_atomic(path, config.model_dump(exclude_none=True), CONFIG_MODE)
