"""`metalplane rack register`: write the rack's config, prove the secret, (re)start rackd."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from metalplane import __version__
from metalplane.config.rack import RackConfig, rack_config_path, update_rack_config
from metalplane.identity import local_hostname, new_system_id, read_system_id, write_secret, write_system_id
from metalplane.rack.cluster_state import ClusterState
from metalplane.rpc.client import open_connection
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import ClientHello, HandshakeRefused


class RegistrationError(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    system_id: str
    region: str
    cluster: str


def refusal_advice(exc: HandshakeRefused, endpoint: Endpoint) -> str:
    """Which side failed, and what to do."""
    where = f"{endpoint.host}:{endpoint.port}"
    if exc.reason == "secret":
        return (
            f"the region at {where} refused this rack's shared secret. Use the secret stored on a region "
            "host in DATA_DIR/secret (/var/lib/metalplane/secret by default; `metalplane init` prints its path)"
        )
    if exc.reason == "region-secret":
        return (
            f"the region at {where} could not prove that it knows the shared secret (this rack's secret was "
            "not refused): it is not a region of the cluster this secret belongs to, or something between "
            "the rack and the region answers in its place. Check the --url"
        )
    return exc.message


def foreign_cluster_message(cluster: str | None, endpoint: Endpoint) -> str:
    return (
        f"{endpoint.host}:{endpoint.port} presents a certificate from another cluster: this rack is registered "
        f"to cluster {cluster}. Moving a rack between clusters risks data loss; run `metalplane rack reset` "
        f"first if you really mean to move it"
    )


async def _endpoints(urls: list[str]) -> list[Endpoint]:
    errors = []
    async with httpx.AsyncClient(timeout=5) as client:
        for url in urls:
            try:
                response = await client.get(url.rstrip("/") + "/rpc/")
                response.raise_for_status()
                found = [Endpoint.from_wire(e) for e in response.json()["endpoints"]]
                if found:
                    return found
                errors.append(f"{url}: no region worker is running")
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                errors.append(f"{url}: {exc}")
    raise RegistrationError("cannot reach any region: " + "; ".join(errors))


async def check_registration(config: RackConfig, secret: str) -> Outcome:
    """One real handshake, so a wrong secret or version fails here, loudly."""
    data_dir = Path(config.data_dir)
    state = ClusterState(data_dir)
    system_id = read_system_id(data_dir) or new_system_id()
    me = ClientHello("rack", system_id, local_hostname(config.hostname), __version__, state.uuid)
    last: Exception | None = None
    for endpoint in await _endpoints(config.maas_url):
        try:
            connection = await open_connection(endpoint.host, endpoint.port, secret, me, state.ca_cert, {})
        except HandshakeRefused as exc:
            raise RegistrationError(refusal_advice(exc, endpoint)) from None
        except ssl.SSLCertVerificationError:
            raise RegistrationError(foreign_cluster_message(state.uuid, endpoint)) from None
        except (OSError, TimeoutError) as exc:
            last = exc
            continue
        await connection.ws.close()
        write_system_id(data_dir, system_id)
        state.remember(connection.welcome.cluster, connection.welcome.ca_cert)
        return Outcome(system_id, connection.welcome.region, connection.welcome.cluster)
    raise RegistrationError(f"no region RPC endpoint answered: {last}")


def register(data_dir: Path, urls: list[str], secret: str, hostname: str | None = None) -> Outcome:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = rack_config_path(data_dir)
    changes: dict = {"maas_url": urls, "data_dir": str(data_dir)}
    if hostname:
        changes["hostname"] = hostname
    # Validate before writing anything: a bad URL leaves the old config in place.
    candidate = RackConfig(**{**(RackConfig().model_dump()), **changes})
    outcome = asyncio.run(check_registration(candidate, secret))
    write_secret(data_dir, secret)
    update_rack_config(path, changes)
    ClusterState(data_dir).request_registration()
    return outcome
