"""The API fuzz walk for longer than CI's: minutes of requests, fresh seeds, shrinking on.

The same walk as tests/integration/test_api_fuzz.py (tests/support/api_fuzz.py),
against a region of its own: every action describe/ lists as admin, as a
non-admin user and anonymously, then the body parsers, the OAuth header and the
metadata API, round after round with a new seed each, until --minutes pass.
A failing request is shrunk to the smallest one hypothesis finds and printed
as Python that sends it again. Exit status 1 when anything failed.

    .venv/bin/python bench/api_fuzz.py [--minutes 10] [--examples 50] [--seed N]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import create_admin, create_user, make_region_config  # noqa: E402
from tests.support import api_fuzz  # noqa: E402
from tests.support.databases import TestDatabases, world_traversable_tempdir  # noqa: E402
from tests.support.processes import RegionProcess  # noqa: E402

EXCLUDE = {"BootResourcesHandler POST import"}  # it would fetch from wherever the walk points it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--examples", type=int, default=50, help="requests per action per identity and round")
    parser.add_argument("--seed", type=int, default=None, help="first round's seed (default: random)")
    parser.add_argument("--no-shrink", action="store_true")
    args = parser.parse_args()

    databases = TestDatabases()
    databases.start()
    root = world_traversable_tempdir("mp-fuzz-bench-")
    process = None
    try:
        config = make_region_config(databases, databases.new_database(), root / "data")
        admin_key = create_admin(config)
        username = f"fuzz-user-{secrets.token_hex(2)}"
        keys = {"admin": admin_key, "user": create_user(config, username), "anonymous": None}
        process = RegionProcess(config, root / "region")
        process.start_and_wait()
        token = api_fuzz.seed_region(config, process.url, admin_key)
        fuzzer = api_fuzz.Fuzzer(
            process.url,
            keys,
            examples=args.examples,
            shrink=not args.no_shrink,
            exclude=EXCLUDE,
            protected_names={"admin", username},
        )
        fuzzer.actions = api_fuzz.walk(fuzzer.description())
        deadline = time.monotonic() + args.minutes * 60
        seed = args.seed if args.seed is not None else secrets.randbits(32)
        rounds = 0
        while time.monotonic() < deadline:
            api_fuzz.SEED_SALT = seed + rounds  # a new sequence every round
            for who in ("admin", "user", "anonymous"):
                fuzzer.walk_actions(fuzzer.actions, who)
            fuzzer.walk_bodies(
                [
                    ("POST", "zones/"),
                    ("PUT", "fabrics/0/"),
                    ("POST", "subnets/"),
                    ("POST", "machines/"),
                    ("POST", "maas/?op=set_config"),
                ],
                args.examples * 4,
            )
            fuzzer.walk_oauth(args.examples * 2)
            fuzzer.walk_metadata(token, args.examples * 4)
            rounds += 1
            print(
                f"round {rounds} (seed {seed + rounds - 1}): {fuzzer.requests} requests, "
                f"{len(fuzzer.failures)} failing, answers {dict(sorted(fuzzer.statuses.items()))}",
                flush=True,
            )
        print(fuzzer.report())
        if "Traceback" in process.log():
            print("the region logged a traceback:\n" + process.log()[-5000:])
            return 1
        return 1 if fuzzer.failures else 0
    finally:
        if process is not None:
            process.stop()
        shutil.rmtree(root, ignore_errors=True)
        databases.stop()


if __name__ == "__main__":
    sys.exit(main())
