"""Configuration: where things live, what the config file may say, and secrets.

The config is validated up front: a wrong key or type names the key and says
what is expected. Secrets never live in the file or the database; the file
names where to get them (an env var, a command, or the keyring).
"""
from __future__ import annotations

import math
import os
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from connectors import paths
from connectors.paths import APP, config_dir, data_dir, default_config_path, default_db_path
from connectors.secrets import resolve_secret
from connectors.schema import (ACCOUNT_SECTIONS, FREEFORM_SECTIONS, REQUIRED, SECTION_TYPES, SECTIONS, ConfigError,
                               Option, Settings, secret_options)
from store.text import utf8_problem

__all__ = ["APP", "ACCOUNT_SECTIONS", "Config", "ConfigError", "FREEFORM", "Option", "REQUIRED", "SECTIONS",
           "Settings", "config_dir", "data_dir", "default_config_path", "default_db_path", "load",
           "resolve_secret", "secret_options", "store_location", "store_options", "validate", "validate_table"]

# The free-form sections and the function that checks each (its owner's). Each is imported
# when its section is in the file: a config without [[hook]] never loads the hook runner.
def _check_channels(table: Any) -> None:
    from connectors.desk.templates import validate_channels

    validate_channels(table)


def _check_targets(table: Any) -> None:
    from connectors.desk.targets import validate as check

    check(table)


def _check_satisfaction(table: Any) -> None:
    from connectors.desk.satisfaction import validate as check

    check(table)


def _check_hooks(table: Any) -> None:
    from connectors.desk.hooks import validate as check

    check(table)


def _check_automation(table: Any) -> None:
    from connectors.desk.automation import validate as check

    check(table)


FREEFORM: dict[str, Callable[[Any], None]] = {
    "channels": _check_channels,
    "targets": _check_targets,
    "satisfaction": _check_satisfaction,
    "hook": _check_hooks,
    "automation": _check_automation,
}
assert tuple(FREEFORM) == FREEFORM_SECTIONS


@dataclass
class Config:
    """A validated config. `settings` holds the fixed sections, typed
    (`cfg.settings.sync.poll_interval`); `accounts` is channel -> account name ->
    options; `extra` the free-form sections as written (already checked)."""

    path: Path | None
    settings: Settings = field(default_factory=Settings)
    accounts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        """One fixed-section value, e.g. `get("attachments", "max_bytes")`; KeyError for a name not in the schema."""
        try:
            return getattr(getattr(self.settings, section), key)
        except AttributeError:
            raise KeyError(f"{section}.{key}") from None

    @property
    def agent(self) -> str:
        return self.settings.agent.name

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else config_dir()


def _check_value(where: str, opt: Option, value: Any) -> Any:
    types = opt.type if isinstance(opt.type, tuple) else (opt.type,)
    # bool is an int in Python; do not let `true` pass as a number
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"{where}: expected {opt.describe()}, got {value!r}")
    if not isinstance(value, types):
        raise ConfigError(f"{where}: expected {opt.describe()}, got {type(value).__name__} {value!r}")
    if opt.choices and value not in opt.choices:
        raise ConfigError(f"{where}: expected {opt.describe()}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # nan makes every comparison false: a loop spinning forever
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        if value < opt.minimum:
            raise ConfigError(f"{where}: expected {opt.minimum:g} or more, got {value!r}")
        if value > opt.maximum:
            raise ConfigError(f"{where}: expected {opt.maximum:g} or less, got {value!r}")
    if float in types and isinstance(value, int):
        value = float(value)
    return value


def validate_table(where: str, spec: dict[str, Option], table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table ([{where}]), got {type(table).__name__}")
    unknown = sorted(set(table) - set(spec))
    if unknown:
        hint = ""
        if any(k in ("password", "token", "app_token") for k in unknown):
            hint = " (secrets are never written in the file: use <name>_env, <name>_command or <name>_keyring)"
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(spec))}{hint}")
    out = {}
    for key, opt in spec.items():
        if key in table:
            out[key] = _check_value(f"{where}.{key}", opt, table[key])
        elif opt.default is REQUIRED:
            raise ConfigError(f"{where}.{key}: missing; {opt.help or 'required'} ({opt.describe()})")
        else:
            out[key] = opt.default
    return out


def validate(data: dict[str, Any], path: Path | None = None) -> Config:
    cfg = Config(path=path)
    known = sorted(set(SECTIONS) | set(ACCOUNT_SECTIONS) | set(FREEFORM))
    for name in data:
        if name not in known:
            raise ConfigError(f"[{name}]: unknown section; expected one of {', '.join(known)}")
    cfg.settings = Settings(**{name: SECTION_TYPES[name](**validate_table(name, spec, data.get(name, {})))
                               for name, spec in SECTIONS.items()})
    for channel, spec in ACCOUNT_SECTIONS.items():
        tables = data.get(channel, {})
        if not isinstance(tables, dict):
            raise ConfigError(f"[{channel}]: expected one table per account, e.g. [{channel}.work]")
        cfg.accounts[channel] = {}
        for account, table in tables.items():
            cfg.accounts[channel][account] = validate_table(f"{channel}.{account}", spec, table)
    for name, check in FREEFORM.items():
        if name in data:
            check(data[name])
            cfg.extra[name] = data[name]
    _check_store_url(cfg.settings.store.url)
    return cfg


def _check_store_url(url: str) -> None:
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not url.startswith(f"{parts.scheme}://"):
        raise ConfigError(f"store.url: expected postgresql://user@host:port/db, got {parts.scheme or url!r}"
                          " (a SQLite store is a path: --db or OMNIDESK_DB)")
    if parts.password is not None or "password=" in parts.query.lower():
        raise ConfigError("store.url: holds a password; secrets are never written in the file: use"
                          " password_env, password_command or password_keyring (or libpq's PGPASSFILE)")


def store_location(cfg: "Config", value=None):
    """The store: `value` (--db), else OMNIDESK_DB, else [store] url, else the default file."""
    if value or os.environ.get("OMNIDESK_DB") or not cfg.settings.store.url:
        return paths.store_location(value)
    return cfg.settings.store.url


def store_options(cfg: "Config") -> dict[str, Any]:
    """Store() keyword arguments from [store]: the write-lock wait, the sharing group and,
    for PostgreSQL, the password from its secret source (fetched only when one is set)."""
    s = cfg.settings.store
    options: dict[str, Any] = {"busy_seconds": s.busy_timeout, "group": s.group or None}
    password = resolve_secret({"password_env": s.password_env, "password_command": s.password_command,
                               "password_keyring": s.password_keyring}, "password", "store")
    if password:
        options["password"] = password
    return options


def load(path: Path | None = None) -> Config:
    """Read and validate the config; a missing file is an empty config."""
    path = Path(path) if path else default_config_path()
    if not path.exists():
        return validate({}, path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(utf8_problem(str(path), e)) from None
    try:
        return validate(data, path)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
