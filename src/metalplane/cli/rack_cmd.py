"""`metalplane rack ...`: register, run and reset a rack controller."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from metalplane.cli.errors import CliError
from metalplane.cli.groups import command_group
from metalplane.config.rack import load_rack_config, rack_config_path
from metalplane.embedded.daemons import Service, data_dir_service, systemd_running
from metalplane.logs import setup_logging
from metalplane.rack.cluster_state import ClusterState
from metalplane.rack.registration import RegistrationError, register


def rack_daemon(data_dir: Path) -> Service:
    return data_dir_service(data_dir, "rackd")


def refresh_units(data_dir: Path) -> None:
    """The data dir's units (the rack's, and the region's if it is one), installed when systemd runs."""
    from metalplane.embedded.service_units import detected_units, install_units, write_data_dir_units

    units = detected_units(data_dir)
    write_data_dir_units(data_dir, units)
    if systemd_running():
        install_units(units)


def register_and_start(
    data_dir: Path, urls: list[str], secret: str, hostname: str | None = None, out: Callable[[str], None] = print
) -> int:
    try:
        outcome = register(data_dir, urls, secret, hostname)
    except RegistrationError as exc:
        raise CliError(f"registration failed: {exc}") from None
    refresh_units(data_dir)
    daemon = rack_daemon(data_dir)
    verb = "restarted" if daemon.stop() else "started"
    pid = daemon.start()
    out(
        f"rack {outcome.system_id} registered with cluster {outcome.cluster}; rackd {verb} "
        f"(pid {pid}, log {daemon.where_logs()})"
    )
    return 0


def _register(args: argparse.Namespace) -> int:
    return register_and_start(args.data_dir.resolve(), args.url, args.secret, args.hostname)


def _run(args: argparse.Namespace) -> int:
    from metalplane.rack.daemon import RackError, run_rack

    config = load_rack_config(args.config or rack_config_path(args.data_dir.resolve()))
    setup_logging(config.debug, prefix="[rackd] ")
    try:
        return run_rack(config)
    except RackError as exc:
        raise CliError(str(exc)) from None


def _reset(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.resolve()
    stopped = rack_daemon(data_dir).stop()
    ClusterState(data_dir).forget()
    print(
        ("rackd stopped; " if stopped else "") + f"{data_dir} no longer belongs to any cluster; "
        "register it again with `metalplane rack register`"
    )
    return 0


def _config(args: argparse.Namespace) -> int:
    """Show rackd.conf, or change it (MAAS's `maas-rack config` flags) and restart a running rackd."""
    import yaml

    from metalplane.config.rack import update_rack_config

    data_dir = args.data_dir.resolve()
    path = rack_config_path(data_dir)
    changes: dict = {}
    if args.region_url:
        changes["maas_url"] = args.region_url
    if args.debug is not None:
        changes["debug"] = args.debug == "true"
    for key in ("tftp_port", "http_port", "bind_address", "hostname"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if not changes:
        print(yaml.safe_dump(load_rack_config(path).model_dump(exclude_none=True), sort_keys=True).rstrip())
        return 0
    if not path.exists():
        raise CliError(
            f"{path}: no rack config here; register first (`metalplane rack register --url URL --secret SECRET`)"
        )
    update_rack_config(path, changes)
    daemon = rack_daemon(data_dir)
    if daemon.stop():
        daemon.start()
        print(f"{path} updated; rackd restarted")
    else:
        print(f"{path} updated")
    return 0


def register_commands(sub: argparse._SubParsersAction, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    rsub = command_group(sub, "rack", "the rack controller")

    p = rsub.add_parser("register", help="join a region with the shared secret and start rackd")
    data_dir_arg(p)
    p.add_argument("--url", action="append", required=True, help="a region's MAAS URL; repeat for more")
    p.add_argument("--secret", required=True, help="the shared secret (a region's DATA_DIR/secret)")
    p.add_argument("--hostname", help="name to register under (default: this host's name)")
    p.set_defaults(func=_register)

    p = rsub.add_parser("run", help="run the rack controller in the foreground")
    data_dir_arg(p)
    p.add_argument("--config", type=Path, help="rackd.conf (default DATA_DIR/rackd.conf)")
    p.set_defaults(func=_run)

    p = rsub.add_parser("config", help="show rackd.conf, or change it and restart rackd (maas-rack config)")
    data_dir_arg(p)
    p.add_argument("--region-url", action="append", metavar="URL", help="a region's MAAS URL; repeat for more")
    p.add_argument("--debug", choices=["true", "false"], help="debug logging")
    p.add_argument("--tftp-port", type=int)
    p.add_argument("--http-port", type=int)
    p.add_argument("--bind-address")
    p.add_argument("--hostname")
    p.set_defaults(func=_config)

    p = rsub.add_parser("reset", help="forget the cluster this rack joined (to move it to another)")
    data_dir_arg(p)
    p.set_defaults(func=_reset)
