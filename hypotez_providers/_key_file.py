"""The stored keys file: API keys saved with ``hypotez keys set``, readable by the user only.

It is ``keys.json`` beside the settings file's default place (``$XDG_CONFIG_HOME/hypotez``),
or ``$HYPOTEZ_KEYS_PATH``: a JSON object of provider name to key. A key found there is used
after the environment and the settings file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError
from .provider_settings import secret_problem
from .settings import default_config_path

KEYS_PATH_ENV = "HYPOTEZ_KEYS_PATH"


def key_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$HYPOTEZ_KEYS_PATH``, else ``keys.json`` in the user's hypotez config directory."""
    environ = os.environ if environ is None else environ
    if environ.get(KEYS_PATH_ENV):
        return Path(environ[KEYS_PATH_ENV]).expanduser()
    # The keys live in the config directory even when HYPOTEZ_CONFIG names another file.
    without = {k: v for k, v in environ.items() if k != "HYPOTEZ_CONFIG"}
    return default_config_path(without).with_name("keys.json")


def read_keys(path: Path) -> dict[str, str]:
    """The stored keys (none when the file does not exist).

    Raises :class:`ConfigError` naming the file (never a key) when it is unreadable, not a
    JSON object of strings, or holds a key with whitespace or control characters.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as problem:
        reason = type(problem).__name__
        raise ConfigError(
            f"{path}: cannot read the stored keys ({reason})", path=str(path)
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{path}: not a JSON object of name to key", path=str(path))
    for name, key in data.items():
        wrong = secret_problem(key)
        if wrong:
            raise ConfigError(f"{path}: the key for {name!r} {wrong}", path=str(path))
    return data


def write_keys(path: Path, keys: Mapping[str, str]) -> None:
    """Write ``keys`` to ``path``, created (or left) with mode 0600, replacing it whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(dict(sorted(keys.items())), file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
