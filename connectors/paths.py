"""Where omnidesk keeps its files: the config folder and the store file.

`OMNIDESK_CONFIG` and `OMNIDESK_DB` override the platform defaults
(platformdirs: ~/.config/omnidesk and ~/.local/share/omnidesk on Linux).
"""
from __future__ import annotations

import os
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


def default_db_path() -> Path:
    return Path(os.environ.get("OMNIDESK_DB") or data_dir() / "omnidesk.db")
