"""`metalplane region ...`: run the daemon and manage regiond.conf with MAAS's flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from metalplane.cli.groups import command_group
from metalplane.config.region import (
    RegionConfig,
    load_region_config,
    region_config_path,
    reset_region_config,
    update_region_config,
)
from metalplane.logs import never_log, setup_logging

# data_dir is where the config lives, so it is chosen with --data-dir, not set.
CONFIG_KEYS = [k for k in RegionConfig.model_fields if k != "data_dir"]
# Keys given by repeating the flag or comma-separating.
LIST_KEYS = {
    "database_host": "database host or socket dir; repeat or comma-separate for HA",
    "trusted_proxies": "a proxy's address or CIDR (the HAProxy hosts); repeat or comma-separate",
}


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _config_path(args: argparse.Namespace) -> Path:
    return region_config_path(args.data_dir, args.config)


def _value_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is None:
            continue
        if key in LIST_KEYS:
            items = [h.strip() for item in value for h in item.split(",") if h.strip()]
            value = items[0] if key == "database_host" and len(items) == 1 else items
        changes[key] = value
    return changes


def _write(args: argparse.Namespace, verb: str, asked: Any, write: Callable[[Path, Any], object]) -> int:
    """`set` or `reset`: write what was asked to the config file; given no key, say which
    there are (exit status 2)."""
    if not asked:
        print(f"nothing to {verb}; give one or more of: " + " ".join(flag(k) for k in CONFIG_KEYS))
        return 2
    write(_config_path(args), asked)
    return 0


def _set(args: argparse.Namespace) -> int:
    return _write(args, "set", _value_changes(args), update_region_config)


def _selected(args: argparse.Namespace) -> list[str]:
    return [k for k in CONFIG_KEYS if getattr(args, k, False)]


def _get(args: argparse.Namespace) -> int:
    config = load_region_config(_config_path(args))
    keys = _selected(args) or CONFIG_KEYS
    data = config.model_dump()
    print(yaml.safe_dump({k: data[k] for k in keys}, default_flow_style=False, sort_keys=False).rstrip())
    return 0


def _reset(args: argparse.Namespace) -> int:
    return _write(args, "reset", _selected(args), reset_region_config)


def _run(args: argparse.Namespace) -> int:
    from metalplane.region.supervisor import run_region

    path = _config_path(args)
    config = load_region_config(path)
    setup_logging(config.debug, prefix="[regiond] ")
    never_log(config.database_pass)
    return run_region(config, path)


def _dbupgrade(args: argparse.Namespace) -> int:
    from metalplane.region.bootstrap import migrate

    migrate(load_region_config(_config_path(args)), "metalplane-dbupgrade")
    print("database schema is current")
    return 0


def _haproxy_config(args: argparse.Namespace) -> int:
    import shutil
    import subprocess
    import tempfile

    from metalplane.cli.errors import CliError
    from metalplane.region.haproxy import HaproxyConfigError, Timing, parse_server, render_config

    try:
        servers = [parse_server(spec, n) for n, spec in enumerate(args.region, 1)]
        text = render_config(
            servers,
            args.bind,
            backend=args.backend,
            nodb_backend=not args.no_nodb_backend,
            stats_socket=args.stats_socket,
            log_target=args.log,
            timing=Timing(inter=args.check_interval),
        )
    except (HaproxyConfigError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.check:
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise CliError("--check needs the haproxy binary (apt install haproxy)")
        with tempfile.NamedTemporaryFile("w", suffix=".cfg") as fh:
            fh.write(text)
            fh.flush()
            proc = subprocess.run([haproxy, "-c", "-q", "-f", fh.name], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CliError("haproxy -c refused the configuration:\n" + (proc.stderr or proc.stdout).strip())
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")
    return 0


def _config_location(parser: argparse.ArgumentParser, data_dir_arg: Callable) -> None:
    parser.add_argument("--config", type=Path, help="regiond.conf path (default DATA_DIR/regiond.conf)")
    data_dir_arg(parser)


def register(sub: argparse._SubParsersAction, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    rsub = command_group(sub, "region", "the region controller")

    p = rsub.add_parser("run", help="run the region supervisor and its workers in the foreground")
    _config_location(p, data_dir_arg)
    p.set_defaults(func=_run)

    p = rsub.add_parser("dbupgrade", help="apply database migrations")
    _config_location(p, data_dir_arg)
    p.set_defaults(func=_dbupgrade)

    p = rsub.add_parser("haproxy-config", help="print an HAProxy configuration balancing the API over regions")
    p.add_argument(
        "--region",
        action="append",
        required=True,
        metavar="[NAME=]HOST[:PORT]",
        help="a region's API address (port 5240 by default); repeat for each region",
    )
    p.add_argument("--bind", default="*:80", metavar="ADDR:PORT", help="the frontend's bind (default *:80)")
    p.add_argument("--backend", default="maas", help="backend name (default maas)")
    p.add_argument("--check-interval", default="1s", metavar="TIME", help="health-check interval (default 1s)")
    p.add_argument("--stats-socket", metavar="PATH", help="add an admin stats socket (e.g. /run/haproxy/admin.sock)")
    p.add_argument("--log", metavar="TARGET", help="log requests to TARGET (e.g. /dev/log, stderr)")
    p.add_argument(
        "--no-nodb-backend", action="store_true", help="answer 503 at once while no region reaches a writable database"
    )
    p.add_argument("--check", action="store_true", help="validate the result with `haproxy -c` first")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=_haproxy_config)

    p = rsub.add_parser("local-config-set", help="set regiond.conf keys (validated; file mode 0640)")
    _config_location(p, data_dir_arg)
    for key in CONFIG_KEYS:
        if key in LIST_KEYS:
            p.add_argument(flag(key), dest=key, action="append", metavar="ADDRESS", help=LIST_KEYS[key])
        else:
            p.add_argument(flag(key), dest=key, metavar="VALUE")
    p.set_defaults(func=_set)

    for name, func, verb in (("local-config-get", _get, "show"), ("local-config-reset", _reset, "reset")):
        p = rsub.add_parser(name, help=f"{verb} regiond.conf keys")
        _config_location(p, data_dir_arg)
        for key in CONFIG_KEYS:
            p.add_argument(flag(key), dest=key, action="store_true")
        p.set_defaults(func=func)
