"""Live ``hypotez fake`` upstreams, announced in the config directory to other terminals.

While it runs, ``hypotez fake`` writes ``fakes/<format>.json`` in the hypotez config directory
(beside ``keys.json``), mode 0600, and removes it on every exit. The ``hypotez`` command, never
the library, reads these files: a provider that neither the environment nor the settings file
give a ``base_url`` is pointed at the live fake of its wire format, and ``hypotez chat`` with
no model and no default asks the model the fake serves. A file whose process is gone is stale:
it is ignored and removed.

A provider that needs a key (OpenAI, Anthropic) is sent the fake's placeholder key instead of
any key configured for it, so a real key never reaches the fake.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HypotezError
from ..registry import Registry
from ..settings import default_config_path, load_settings
from .output import echo

#: Commands that never call an installed provider (``plugins check`` brings its own fake):
#: no note for them.
_QUIET_COMMANDS = frozenset({"fake", "keys", "logs"})
_QUIET_SUBCOMMANDS = frozenset({"models default", "config init", "config path", "plugins check"})


@dataclass(frozen=True)
class Announcement:
    """One running ``hypotez fake``: where it listens and what it stands in for."""

    form: str
    url: str
    base_url: str
    provider: str
    model: str
    pid: int
    api_key: str | None = None

    def describe(self) -> str:
        """``gravityengine -> fake upstream http://...`` for the note on stderr."""
        return f"{self.provider} -> fake upstream {self.url} (hypotez fake, pid {self.pid})"


def announcements_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``fakes/`` in the hypotez config directory (where ``keys.json`` lives by default)."""
    environ = os.environ if environ is None else environ
    # Like the keys: the config directory even when HYPOTEZ_CONFIG names a file elsewhere.
    without = {k: v for k, v in environ.items() if k != "HYPOTEZ_CONFIG"}
    return default_config_path(without).parent / "fakes"


def announce(announcement: Announcement, environ: Mapping[str, str] | None = None) -> Path:
    """Write ``announcement`` to its file, created with mode 0600; return the file's path.

    Raises :class:`OSError` when the directory cannot be created or written.
    """
    directory = announcements_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{announcement.form}.json"
    temporary = directory / f".{announcement.form}.{announcement.pid}.tmp"
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(announcement), file, indent=2)
        file.write("\n")
    # Replaced whole: a reader never sees half a file.
    os.replace(temporary, path)
    return path


def withdraw(path: Path, pid: int) -> None:
    """Remove the announcement at ``path`` if it is still ``pid``'s (a newer fake may own it)."""
    found = _read(path)
    if found is not None and found.pid == pid:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def live_announcements(environ: Mapping[str, str] | None = None) -> list[Announcement]:
    """The announcements of fakes still running, by format; stale ones are removed."""
    directory = announcements_dir(environ)
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return []
    live = []
    for path in paths:
        found = _read(path)
        if found is None:
            continue
        if _alive(found.pid):
            live.append(found)
        else:
            # In a read-only directory the stale file stays; ignoring it is enough.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    return live


def environ_with_fakes(
    environ: Mapping[str, str],
) -> tuple[dict[str, str], list[Announcement]]:
    """``environ`` plus the variables that point providers at live fakes, and those fakes.

    A provider is pointed at a fake only if neither ``environ`` nor the settings file give it
    a base URL. Broken settings point nothing anywhere: building the registry reports them.
    """
    result = dict(environ)
    fakes = live_announcements(environ)
    if not fakes:
        return result, []
    try:
        settings = load_settings(environ=environ)
    except HypotezError:
        return result, []
    applied = []
    for fake in fakes:
        prefix = "HYPOTEZ_" + fake.provider.upper().replace("-", "_") + "_"
        table = settings.providers.get(fake.provider)
        if environ.get(prefix + "BASE_URL") or (table is not None and table.base_url):
            continue
        result[prefix + "BASE_URL"] = fake.base_url
        if fake.api_key:
            # Beats the vendor's variable, the settings and the stored keys: only the
            # placeholder goes to the fake.
            result[prefix + "API_KEY"] = fake.api_key
        applied.append(fake)
    return result, applied


def pointed_at_fakes(registry: Registry, fakes: Sequence[Announcement]) -> list[Announcement]:
    """The ``fakes`` whose provider in ``registry`` really is pointed at them."""
    return [
        fake
        for fake in fakes
        if fake.provider in registry.by_name
        and registry.by_name[fake.provider].settings.base_url == fake.base_url
    ]


def note_fakes(registry: Registry, fakes: Sequence[Announcement], arguments: Sequence[str]) -> None:
    """Say on stderr, once, which providers this command sends to a live fake."""
    if not arguments or arguments[0] in _QUIET_COMMANDS or arguments[0].startswith("-"):
        return
    if " ".join(arguments[:2]) in _QUIET_SUBCOMMANDS:
        return
    for fake in pointed_at_fakes(registry, fakes):
        echo(f"hypotez: {fake.describe()}", err=True)


def serving_fake(registry: Registry) -> Announcement | None:
    """The live fake a provider of ``registry`` is pointed at, the first by format, if any."""
    live = pointed_at_fakes(registry, live_announcements())
    return live[0] if live else None


def _read(path: Path) -> Announcement | None:
    try:
        found = Announcement(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return None  # not ours, or unreadable: nothing to honour
    texts = (found.form, found.url, found.base_url, found.provider, found.model)
    if not (all(isinstance(text, str) for text in texts) and type(found.pid) is int):
        return None
    return found


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return True  # os.kill would end the process there; the fake removes its file itself
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it is someone else's
    except OSError:
        return False
    return True


__all__ = [
    "Announcement",
    "announce",
    "announcements_dir",
    "environ_with_fakes",
    "live_announcements",
    "note_fakes",
    "pointed_at_fakes",
    "serving_fake",
    "withdraw",
]
