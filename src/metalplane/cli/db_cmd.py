"""`metalplane db ...`: the embedded PostgreSQL cluster's access for other region hosts."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from metalplane.cli.errors import CliError
from metalplane.cli.groups import command_group
from metalplane.config.region import load_region_config, region_config_path


def _allow_region(args: argparse.Namespace) -> int:
    import ipaddress

    from metalplane.embedded.init import Layout
    from metalplane.embedded.postgres import PostgresError

    try:
        ipaddress.ip_address(args.address)
    except ValueError:
        raise CliError(f"{args.address!r} is not an IP address (give the new region host's address)") from None
    data_dir = args.data_dir.resolve()
    layout = Layout(data_dir)
    cluster = layout.cluster
    if not cluster.exists():
        raise CliError(
            f"no embedded PostgreSQL cluster in {cluster.root} (an external database is set up "
            "by its own administrator: add `host maasdb maas IP/32 scram-sha-256` to pg_hba.conf)"
        )
    path = region_config_path(data_dir)
    dbname, user = "maasdb", "maas"
    if path.exists():
        config = load_region_config(path)
        dbname, user = config.database_name, config.database_user
    try:
        result = cluster.allow_host(
            args.address, dbname, user, listen_addresses=args.listen_address, restart=not args.no_restart
        )
    except (PostgresError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f'pg_hba.conf: {"added" if result.hba_added else "already has"} "{result.hba_line}"')
    if result.listen_after != result.listen_before:
        print(f"listen_addresses: '{result.listen_before}' -> '{result.listen_after}'")
    else:
        print(f"listen_addresses: '{result.listen_after}' (unchanged)")
    if result.restarted:
        print(
            "PostgreSQL restarted (fast mode) to listen on TCP: open transactions were rolled back and "
            "clients reconnected; metalplane regions retry by themselves."
        )
    elif result.restart_needed:
        print(
            "PostgreSQL must be restarted for listen_addresses to apply: "
            f"pg_ctl -D {cluster.data} -m fast restart (as {cluster.owner}), or `metalplane stop` + "
            "`metalplane init`."
        )
    elif result.reloaded:
        print("PostgreSQL reloaded pg_hba.conf (no restart needed).")
    first = next((a for a in result.listen_after.split(",") if a not in ("*", "localhost", "")), None)
    if first:
        print(
            f"On the region host {args.address}: metalplane region local-config-set "
            f"--database-host {first} --database-port {cluster.port}"
        )
    return 0


def register(sub: argparse._SubParsersAction, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    dsub = command_group(sub, "db", "the embedded PostgreSQL cluster")
    p = dsub.add_parser(
        "allow-region",
        help="let a region host reach this host's embedded PostgreSQL (pg_hba.conf + TCP)",
        description="Adds `host DB USER IP/32 scram-sha-256` to pg_hba.conf and makes PostgreSQL listen on "
        "the address this host uses to reach IP (added to any already listened on). Changing "
        "listen_addresses needs a restart, done in fast mode unless --no-restart.",
    )
    data_dir_arg(p)
    p.add_argument("address", metavar="IP", help="the new region host's address")
    p.add_argument(
        "--listen-address",
        metavar="ADDRS",
        help="listen_addresses to set instead (comma-separated; '*' = every interface, "
        "pg_hba.conf still admits only the allowed hosts)",
    )
    p.add_argument("--no-restart", action="store_true", help="do not restart PostgreSQL; say when a restart is needed")
    p.set_defaults(func=_allow_region)
