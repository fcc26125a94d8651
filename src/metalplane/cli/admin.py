"""init, status, stop, apikey, createadmin: the embedded default's commands."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable

from metalplane.cli.errors import CliError
from metalplane.cli.progress import Progress
from metalplane.config.region import load_region_config, region_config_path
from metalplane.embedded import init as embedded
from metalplane.embedded.external_db import DatabaseSettings, parse_database_uri
from metalplane.embedded.postgres import PostgresError
from metalplane.embedded.service_units import UnitsError


def database_settings(args: argparse.Namespace) -> DatabaseSettings | None:
    """--database-uri, or --database-host with the other --database-* flags, or None (embedded)."""
    flags = [args.database_port, args.database_name, args.database_user, args.database_pass]
    if args.database_uri:
        if args.database_host or any(f is not None for f in flags):
            raise CliError("give --database-uri or the --database-* flags, not both")
        try:
            return parse_database_uri(args.database_uri)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if not args.database_host:
        if any(f is not None for f in flags):
            raise CliError("--database-port/-name/-user/-pass need --database-host (or use --database-uri)")
        return None
    hosts = [h.strip() for item in args.database_host for h in item.split(",") if h.strip()]
    return DatabaseSettings(hosts, args.database_port, args.database_name, args.database_user, args.database_pass)


def _init(args: argparse.Namespace) -> int:
    database = database_settings(args)
    if args.mode == "rack":
        if not args.maas_url or not args.secret:
            raise CliError("--mode rack needs --maas-url URL and --secret SECRET")
        if database is not None:
            raise CliError("--mode rack uses no database; the --database-* flags are for region modes")
        from metalplane.cli.rack_cmd import register_and_start

        return register_and_start(args.data_dir.resolve(), [args.maas_url], args.secret)
    progress = Progress(embedded.INIT_STEPS, steps=True)
    try:
        return embedded.init(
            args.data_dir.resolve(),
            args.port,
            args.admin_username,
            args.admin_password,
            args.admin_email,
            maas_url=args.maas_url,
            num_workers=args.num_workers,
            listen_address=args.listen_address,
            with_rack=args.mode in ("all", "region+rack"),
            database=database,
            out=progress.say,
            step=progress.step,
        )
    except (embedded.InitError, PostgresError, UnitsError) as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish()


def _status(args: argparse.Namespace) -> int:
    return embedded.status(args.data_dir.resolve())


def _stop(args: argparse.Namespace) -> int:
    return embedded.stop(args.data_dir.resolve())


def _apikey(args: argparse.Namespace) -> int:
    config = load_region_config(region_config_path(args.data_dir))
    try:
        print(embedded.apikey(config, args.username, args.generate))
    except embedded.InitError as exc:
        raise CliError(str(exc)) from None
    return 0


def _createadmin(args: argparse.Namespace) -> int:
    config = load_region_config(region_config_path(args.data_dir))
    password = args.password or getpass.getpass("Password: ")
    if not password:
        raise CliError("a password is required")
    try:
        key = embedded.createadmin(config, args.username, password, args.email)
    except embedded.InitError as exc:
        raise CliError(str(exc)) from None
    print(key)
    return 0


def register(sub: argparse._SubParsersAction, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("init", help="set up and start the embedded default (PostgreSQL + region)")
    data_dir_arg(p)
    p.add_argument(
        "--mode",
        choices=["all", "region+rack", "region", "rack"],
        default="all",
        help="all (or MAAS's region+rack): region + rack (default); region; rack: join --maas-url with --secret",
    )
    p.add_argument("--secret", help="with --mode rack: the region's shared secret")
    p.add_argument("--port", type=int, default=5240, help="API port (default 5240; RPC uses PORT+10 up)")
    p.add_argument("--maas-url", help="URL racks and clients use (default http://localhost:PORT/MAAS)")
    p.add_argument("--num-workers", type=int, help="region worker processes (default 4)")
    p.add_argument("--listen-address", help="address the API binds (default 0.0.0.0)")
    p.add_argument("--admin-username", default="admin")
    p.add_argument("--admin-password", help="generated and printed when omitted")
    p.add_argument("--admin-email", default="admin@localhost")
    db = p.add_argument_group("an existing PostgreSQL instead of the embedded one (checked before anything is written)")
    db.add_argument(
        "--database-host",
        action="append",
        metavar="HOST[,HOST2]",
        help="host, HOST:PORT or socket dir; repeat or comma-separate for HA",
    )
    db.add_argument("--database-port", type=int, help="default 5432")
    db.add_argument("--database-name", help="default maasdb")
    db.add_argument("--database-user", help="default maas")
    db.add_argument("--database-pass")
    db.add_argument(
        "--database-uri",
        metavar="postgres://USER:PASS@HOST[:PORT]/NAME",
        help="all of the above in one (MAAS's `maas init --database-uri`)",
    )
    p.set_defaults(func=_init)

    p = sub.add_parser("status", help="show what runs for a data dir")
    data_dir_arg(p)
    p.set_defaults(func=_status)

    p = sub.add_parser("stop", help="stop everything `init` started for a data dir")
    data_dir_arg(p)
    p.set_defaults(func=_stop)

    p = sub.add_parser("apikey", help="print a user's API key")
    data_dir_arg(p)
    p.add_argument("--username", required=True)
    p.add_argument("--generate", action="store_true", help="make a new key instead of printing the first")
    p.set_defaults(func=_apikey)

    p = sub.add_parser("createadmin", help="create an administrator and print its API key")
    data_dir_arg(p)
    p.add_argument("--username", required=True)
    p.add_argument("--password", help="prompted for when omitted")
    p.add_argument("--email", default="")
    p.set_defaults(func=_createadmin)
