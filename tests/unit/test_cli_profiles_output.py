"""Profile storage and response rendering for the API client."""

import json
import stat

import pytest

from metalplane.cli.api_output import media_type, render_body, response_summary
from metalplane.cli.errors import CliError
from metalplane.cli.profiles import ProfileStore, api_key, profiles_path


def test_profiles_path_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("METALPLANE_PROFILES", str(tmp_path / "p.json"))
    assert profiles_path() == tmp_path / "p.json"
    monkeypatch.delenv("METALPLANE_PROFILES")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert profiles_path() == tmp_path / ".config" / "metalplane" / "profiles.json"


def test_store_round_trip_mode_0600_and_no_leftovers(tmp_path):
    path = tmp_path / "sub" / "profiles.json"
    store = ProfileStore(path)
    assert store.load() == {}
    with store.editing() as profiles:
        profiles["p"] = {"name": "p", "url": "http://h/MAAS/api/2.0/", "credentials": ["a", "b", "c"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get("p")["credentials"] == ["a", "b", "c"]
    assert api_key(store.get("p")) == "a:b:c"
    assert api_key({"credentials": None}) is None
    with store.editing() as profiles:
        profiles.pop("p")
    assert store.load() == {}
    assert sorted(f.name for f in path.parent.iterdir()) == ["profiles.json", "profiles.json.lock"]


def test_store_failed_edit_keeps_file(tmp_path):
    store = ProfileStore(tmp_path / "p.json")
    with store.editing() as profiles:
        profiles["a"] = {"name": "a"}
    with pytest.raises(RuntimeError):
        with store.editing() as profiles:
            profiles.clear()
            raise RuntimeError("boom")
    assert list(store.load()) == ["a"]


@pytest.mark.parametrize("text", ["{not json", "[1]", '{"profiles": 3}'])
def test_store_corrupt_file_is_one_clear_error(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(CliError, match="not valid"):
        ProfileStore(path).load()


def test_media_type():
    assert media_type("application/json; charset=utf-8") == "application/json"
    assert media_type(None) == ""


def test_render_json_pretty_indent_4():
    out = render_body("application/json; charset=utf-8", b'[{"id":0,"name":"f\xc3\xa9"}]')
    assert out == json.dumps([{"id": 0, "name": "fé"}], indent=4, ensure_ascii=False).encode() + b"\n"


def test_render_text_binary_empty_and_bad_json():
    assert render_body("text/plain; charset=utf-8", b"Not Found") == b"Not Found\n"
    assert render_body("text/plain", b"done\n") == b"done\n"
    assert render_body("application/octet-stream", b"\x00\x01") == b"\x00\x01"
    assert render_body("text/plain", b"") == b""
    assert render_body("application/json", b"{bad") == b"{bad\n"


def test_response_summary():
    text = response_summary(404, "Not Found", {"content-type": "text/plain", "x-maas-api-hash": "h"})
    assert text.splitlines()[0] == "404 Not Found"
    assert "Content-Type: text/plain" in text and "X-Maas-Api-Hash: h" in text
