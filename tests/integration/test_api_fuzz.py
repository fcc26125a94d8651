"""The fuzz walk of the whole API (tests/support/api_fuzz.py): no 5xx, and every 400 names its field.

A region of its own (the walk creates and deletes at random), walked from its
own describe/ as admin, as a non-admin user and anonymously, then through the
body parsers, the OAuth header and the metadata API. Seeded per action, so a
CI run is reproducible; bench/api_fuzz.py runs the same walk for longer, with
shrinking. The budget keeps the whole file under ~3 minutes as handlers grow.
"""

from __future__ import annotations

import secrets
import shutil

import pytest

from metalplane.client.http import MaasHttp
from tests.conftest import create_admin, create_user, make_region_config
from tests.support.api_fuzz import Fuzzer, seed_region, walk
from tests.support.databases import world_traversable_tempdir
from tests.support.processes import RegionProcess

# Hypothesis warns about the size of the huge values it is asked to make; they are the point.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

# Requests per walk in CI, shared by the actions describe/ lists (at least MIN_EXAMPLES each):
# with MAAS's ~390 actions the walk stays near 3,000 requests, about 1-2 minutes.
BUDGET = {"admin": 1500, "user": 600, "anonymous": 200}
MIN_EXAMPLES = {"admin": 3, "user": 2, "anonymous": 2}
MAX_EXAMPLES = 25
# Actions the walk leaves out, and why: a real import would fetch from wherever the
# fuzzer pointed it (tests/integration/test_boot_resources.py covers image imports), and
# an SSH key import asks Launchpad or GitHub, which this machine cannot reach (a 503
# naming the host; tests/integration/test_accounts_api.py covers imports with a local stub).
EXCLUDE = {"BootResourcesHandler POST import", "SSHKeysHandler POST import"}


@pytest.fixture(scope="module")
def fuzz_region(databases):
    root = world_traversable_tempdir("mp-fuzz-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data")
    admin_key = create_admin(config)
    username = f"fuzz-user-{secrets.token_hex(2)}"
    user_key = create_user(config, username)
    process = RegionProcess(config, root / "region")
    try:
        process.start_and_wait()
        token = seed_region(config, process.url, admin_key)
        yield {
            "url": process.url,
            "keys": {"admin": admin_key, "user": user_key, "anonymous": None},
            "protected": {"admin", username},
            "token": token,
            "process": process,
        }
    finally:  # also when seeding fails: no region left running
        process.stop()
        databases.drop_database(dbname)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzzer(fuzz_region):
    f = Fuzzer(fuzz_region["url"], fuzz_region["keys"], exclude=EXCLUDE, protected_names=fuzz_region["protected"])
    f.actions = walk(f.description())
    f.collect_known(f.actions)
    yield f
    f.close()


def examples_for(who: str, count: int) -> int:
    return max(MIN_EXAMPLES[who], min(MAX_EXAMPLES, BUDGET[who] // max(count, 1)))


@pytest.mark.parametrize("who", ["admin", "user", "anonymous"])
def test_every_action_answers_without_5xx_and_names_the_field(fuzzer, who):
    assert len(fuzzer.actions) >= 50, "describe/ lists every handler's actions"
    fuzzer.failures.clear()
    fuzzer.walk_actions(fuzzer.actions, who, examples_for(who, len(fuzzer.actions)))
    assert not fuzzer.failures, fuzzer.report()
    if who == "admin":
        # the walk gets past validation into the services: many actions succeeded at least once
        # (with 20 examples each, ~60 of today's 74 do; fewer examples per action reach fewer)
        reached = {a.key for a in fuzzer.actions if not a.anon} & fuzzer.succeeded
        missed = sorted({a.key for a in fuzzer.actions if not a.anon} - fuzzer.succeeded)
        assert len(reached) >= 0.4 * len([a for a in fuzzer.actions if not a.anon]), "\n".join(missed)


def test_broken_bodies_answer_400_or_413(fuzzer):
    fuzzer.failures.clear()
    paths = [
        ("POST", "zones/"),
        ("PUT", "fabrics/0/"),
        ("POST", "subnets/"),
        ("POST", "machines/"),
        ("POST", "maas/?op=set_config"),
        ("DELETE", "zones/fuzz-zone/"),
        ("POST", "boot-resources/"),
    ]
    fuzzer.walk_bodies(paths, 150)
    assert not fuzzer.failures, fuzzer.report()


def test_oauth_header_garbage_answers_401_or_400(fuzzer):
    fuzzer.failures.clear()
    fuzzer.walk_oauth(100)
    assert not fuzzer.failures, fuzzer.report()


def test_metadata_api_answers_without_5xx(fuzzer, fuzz_region):
    fuzzer.failures.clear()
    fuzzer.walk_metadata(fuzz_region["token"], 250)
    assert not fuzzer.failures, fuzzer.report()


def test_the_region_is_still_whole_after_the_walk(fuzzer, fuzz_region):
    """The walk ran through the same region: it still answers, and its log has no traceback."""
    with MaasHttp(fuzz_region["url"], fuzz_region["keys"]["admin"]) as api:
        assert api.get("users/", op="whoami").json()["username"] == "admin"
    assert "Traceback" not in fuzz_region["process"].log(), fuzz_region["process"].log()[-5000:]
