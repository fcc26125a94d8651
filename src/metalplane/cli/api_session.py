"""`metalplane login | logout | list | refresh`: the maascli profile commands."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlparse

import httpx

from metalplane.cli.admin_commands import ADMIN_COMMANDS
from metalplane.cli.api_output import media_type
from metalplane.cli.errors import CliError
from metalplane.cli.profiles import Profile, ProfileStore, api_key
from metalplane.client.http import MaasHttp, api_root, split_key

RESERVED_NAMES = {"login", "logout", "list", "refresh", "help"}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors become one-line CliErrors."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def connection_error(url: str, exc: httpx.HTTPError | httpx.InvalidURL) -> CliError:
    return CliError(f"cannot reach {url}: {one_line(str(exc)) or type(exc).__name__}")


def fetch_description(url: str, insecure: bool = False) -> dict[str, Any]:
    """GET describe/, unsigned, as `maas login` and `maas refresh` do."""
    try:
        with MaasHttp(url, verify=not insecure) as http:
            response = http.get("describe/")
    except httpx.HTTPError as exc:
        raise connection_error(url, exc) from None
    if response.status_code != 200:
        raise CliError(f"describe/ answered {response.status_code} {response.reason_phrase}: {one_line(response.text)}")
    kind = media_type(response.headers.get("content-type"))
    if kind != "application/json":
        raise CliError(f"describe/: expected application/json, got {kind or 'no content type'}")
    try:
        description = response.json()
    except ValueError:
        raise CliError("describe/ did not answer valid JSON") from None
    if not isinstance(description, dict) or not isinstance(description.get("resources"), list):
        raise CliError("describe/ did not answer an API description (no resources)")
    return description


def check_api_key(url: str, key: str, insecure: bool = False) -> None:
    """A signed `GET users/?op=whoami` must answer 200, as modern maascli checks."""
    try:
        with MaasHttp(url, key, verify=not insecure) as http:
            response = http.get("users/", op="whoami")
    except httpx.HTTPError as exc:
        raise connection_error(url, exc) from None
    if response.status_code in (401, 403):
        raise CliError("The MAAS server rejected your API key.")
    if response.status_code != 200:
        raise CliError(
            f"The MAAS server gave an unexpected response: {response.status_code} "
            f"{response.reason_phrase} (is {url} a MAAS API URL?)"
        )


def obtain_credentials(given: str | None) -> list[str] | None:
    """The key from the command line, `-` for stdin, a prompt on a terminal; empty = anonymous."""
    if given == "-":
        given = sys.stdin.readline()
    elif given is None:
        given = getpass.getpass("API key (leave empty for anonymous access): ") if sys.stdin.isatty() else ""
    given = given.strip()
    if not given:
        return None
    try:
        return list(split_key(given))
    except ValueError:
        raise CliError("that API key looks wrong: it has the form consumer_key:token_key:token_secret") from None


def normalise_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CliError(f"{url!r} is not an http(s) URL, e.g. http://HOST:5240/MAAS/")
    return api_root(url)


def check_profile_name(name: str) -> None:
    if not name or name.startswith("-") or any(ch.isspace() for ch in name):
        raise CliError(f"{name!r} cannot be a profile name")
    if name in RESERVED_NAMES or name in ADMIN_COMMANDS:
        raise CliError(f"{name!r} is a metalplane command; choose another profile name")


def login(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="metalplane login", description="Log in to a MAAS API, storing its description and your API key."
    )
    parser.add_argument("profile", metavar="PROFILE", help="the name you will use for this server and key")
    parser.add_argument("url", metavar="URL", help="the API URL, e.g. http://HOST:5240/MAAS/")
    parser.add_argument(
        "key",
        metavar="KEY",
        nargs="?",
        default=None,
        help="API key consumer_key:token_key:token_secret; '-' reads it from stdin; "
        "omit for a prompt (or anonymous access when stdin is not a terminal)",
    )
    parser.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate")
    args = parser.parse_args(argv)
    check_profile_name(args.profile)
    url = normalise_url(args.url)
    credentials = obtain_credentials(args.key)
    if credentials:
        check_api_key(url, ":".join(credentials), args.insecure)
    description = fetch_description(url, args.insecure)
    profile: Profile = {
        "name": args.profile,
        "url": url,
        "credentials": credentials,
        "description": description,
        "cacerts": None,
    }
    with ProfileStore().editing() as profiles:
        profiles[args.profile] = profile
    print(
        f"You are now logged in to the MAAS server at {url} with the profile name '{args.profile}'.\n\n"
        f"For help with the available commands, try:\n\n  metalplane {args.profile} --help\n"
    )
    return 0


def logout(argv: list[str]) -> int:
    parser = OneLineParser(prog="metalplane logout", description="Log out of a MAAS API, forgetting its key.")
    parser.add_argument("profile", metavar="PROFILE")
    args = parser.parse_args(argv)
    with ProfileStore().editing() as profiles:
        if profiles.pop(args.profile, None) is None:
            raise CliError(f"no profile named {args.profile!r} (see `metalplane list`)")
    return 0


def list_profiles(argv: list[str]) -> int:
    parser = OneLineParser(prog="metalplane list", description="List the profiles you are logged in to.")
    parser.parse_args(argv)
    for name, profile in sorted(ProfileStore().load().items()):
        key = api_key(profile)
        print(" ".join(part for part in (name, profile.get("url", ""), key) if part))
    return 0


def refresh(argv: list[str]) -> int:
    parser = OneLineParser(prog="metalplane refresh", description="Fetch every profile's API description again.")
    parser.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate")
    args = parser.parse_args(argv)
    store = ProfileStore()
    fresh: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name, profile in sorted(store.load().items()):
        try:
            fresh[name] = fetch_description(profile["url"], args.insecure)
        except CliError as exc:
            failed.append(f"{name}: {exc}")
    if fresh:
        with store.editing() as profiles:
            for name, description in fresh.items():
                if name in profiles:
                    profiles[name]["description"] = description
    if failed:
        raise CliError("could not refresh " + "; ".join(failed))
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "login": login,
    "logout": logout,
    "list": list_profiles,
    "refresh": refresh,
}
