"""The pure parts of login: URL normalisation, key parsing, profile names."""

import io

import pytest

from metalplane.cli import api_session
from metalplane.cli.errors import CliError


@pytest.mark.parametrize(
    "given, root",
    [
        ("http://h:5240/MAAS", "http://h:5240/MAAS/api/2.0/"),
        ("http://h:5240/MAAS/", "http://h:5240/MAAS/api/2.0/"),
        ("http://h:5240/MAAS/api/2.0", "http://h:5240/MAAS/api/2.0/"),
        ("https://h/MAAS/api/2.0/", "https://h/MAAS/api/2.0/"),
    ],
)
def test_normalise_url(given, root):
    assert api_session.normalise_url(given) == root


@pytest.mark.parametrize("bad", ["h:5240/MAAS", "ftp://h/MAAS/", "http:///MAAS/"])
def test_normalise_url_rejects(bad):
    with pytest.raises(CliError, match="http"):
        api_session.normalise_url(bad)


def test_obtain_credentials(monkeypatch):
    assert api_session.obtain_credentials("a:b:c") == ["a", "b", "c"]
    assert api_session.obtain_credentials("") is None
    monkeypatch.setattr("sys.stdin", io.StringIO(" x:y:z \n"))
    assert api_session.obtain_credentials("-") == ["x", "y", "z"]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert api_session.obtain_credentials(None) is None  # not a terminal: anonymous
    with pytest.raises(CliError, match="consumer_key:token_key:token_secret"):
        api_session.obtain_credentials("a:b")


@pytest.mark.parametrize("name", ["login", "list", "refresh", "status", "region", "-x", "a b", ""])
def test_reserved_or_bad_profile_names(name):
    with pytest.raises(CliError):
        api_session.check_profile_name(name)


def test_ordinary_profile_name():
    api_session.check_profile_name("admin")
