"""Where omnidesk keeps its files: the config folder and the store file.

`OMNIDESK_CONFIG` and `OMNIDESK_DB` override the platform defaults
(platformdirs: ~/.config/omnidesk and ~/.local/share/omnidesk on Linux).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

APP = "omnidesk"


def config_dir() -> Path:
    """The folder of config.toml, keybindings.toml, rules.toml and templates/."""
    return Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    """The folder of the store file and the log."""
    return Path(platformdirs.user_data_dir(APP))


def default_config_path() -> Path:
    return Path(os.environ.get("OMNIDESK_CONFIG") or config_dir() / "config.toml")


def is_url(location) -> bool:
    """Is `location` a URL (scheme://...) rather than a file path?"""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", str(location)) is not None


def store_location(value: str | os.PathLike | None = None) -> Path | str:
    """Where the store is: `value` (--db), else OMNIDESK_DB, else the default file. A URL
    stays a string (pathlib would fold its //); the store opens or refuses it."""
    text = os.fspath(value) if value else os.environ.get("OMNIDESK_DB")
    if not text:
        return data_dir() / "omnidesk.db"
    return text if is_url(text) else Path(text)


def default_db_path() -> Path | str:
    return store_location(None)


def beside_store(location, name: str) -> Path:
    """A file that lives next to the store (a log): beside the SQLite file, or in the data
    folder for a store given by URL."""
    return data_dir() / name if is_url(location) else Path(location).parent / name
