"""Where `metalplane login` keeps profiles: one JSON file, mode 0600, replaced atomically.

A profile is what maascli stores per profile: `{"name", "url", "credentials":
[consumer_key, token_key, token_secret] | null, "description": <describe/>,
"cacerts": null}`. The file is `$METALPLANE_PROFILES` when set, else
`~/.config/metalplane/profiles.json`.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metalplane.cli.errors import CliError

Profile = dict[str, Any]
ENV_VAR = "METALPLANE_PROFILES"


def profiles_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "metalplane" / "profiles.json"


def api_key(profile: Profile) -> str | None:
    """`ck:tk:ts`, or None for an anonymous profile."""
    creds = profile.get("credentials")
    return ":".join(creds) if creds else None


class ProfileStore:
    def __init__(self, path: Path | None = None):
        self.path = path or profiles_path()

    def load(self) -> dict[str, Profile]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CliError(f"cannot read profiles from {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if text.strip() else {}
            profiles = data.get("profiles", {}) if isinstance(data, dict) else None
            if not isinstance(profiles, dict):
                raise ValueError("no 'profiles' object")
        except ValueError as exc:
            raise CliError(f"profiles file {self.path} is not valid ({exc}); fix or remove it") from None
        return profiles

    def get(self, name: str) -> Profile | None:
        return self.load().get(name)

    @contextmanager
    def editing(self) -> Iterator[dict[str, Profile]]:
        """Load, let the caller change the dict, save: under a lock, written atomically."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError as exc:
            raise CliError(f"cannot write profiles to {self.path}: {exc.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            profiles = self.load()
            yield profiles
            self._save(profiles)

    def _save(self, profiles: dict[str, Profile]) -> None:
        body = json.dumps({"profiles": profiles}, indent=1, sort_keys=True).encode("utf-8")
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # mode 0600
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise CliError(f"cannot write profiles to {self.path}: {exc.strerror}") from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
