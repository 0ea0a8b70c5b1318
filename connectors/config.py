"""Configuration: where things live, what the config file may say, and secrets.

The config is validated up front: a wrong key or type names the key and says
what is expected. Secrets never live in the file or the database; the file
names where to get them (an env var, a command, or the keyring).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import platformdirs

APP = "omnidesk"
REQUIRED = object()


class ConfigError(Exception):
    """A problem in the config file, worded for the person who wrote it."""


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def default_config_path() -> Path:
    return Path(os.environ.get("OMNIDESK_CONFIG") or config_dir() / "config.toml")


def default_db_path() -> Path:
    return Path(os.environ.get("OMNIDESK_DB") or data_dir() / "omnidesk.db")


@dataclass(frozen=True)
class Option:
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    choices: tuple = ()
    minimum: float = 0  # for numbers: no option here means anything below zero

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                 list: "a list", dict: "a table"}
        return " or ".join(names.get(t, t.__name__) for t in types)


def secret_options(name: str, what: str) -> dict[str, Option]:
    """The three ways to supply one secret: `<name>_env`, `<name>_command`, `<name>_keyring`."""
    return {
        f"{name}_env": Option(str, None, f"environment variable holding the {what}"),
        f"{name}_command": Option(str, None, f"command that prints the {what} (e.g. `pass show ...`)"),
        f"{name}_keyring": Option(str, None, f"keyring entry 'service/username' holding the {what}"),
    }


# Fixed sections: name -> options.
SECTIONS: dict[str, dict[str, Option]] = {
    "agent": {
        "name": Option(str, os.environ.get("USER", "agent"), "your name, shown on replies and notes"),
        "email": Option(str, "", "your e-mail address (for the record)"),
    },
    "sync": {
        "poll_interval": Option((int, float), 30.0, "seconds between polls when a channel cannot push", minimum=1),
        "max_attempts": Option(int, 5, "send attempts before a reply is marked failed", minimum=1),
        "lease_seconds": Option((int, float), 30.0, "how long a silent poller keeps the polling lease"),
    },
    "attachments": {
        "max_bytes": Option(int, 25 * 1024 * 1024, "largest attachment kept, in bytes"),
        "open_command": Option(str, "xdg-open", "command that opens a saved attachment"),
        "save_dir": Option(str, "~/Downloads", "where attachments are saved"),
    },
    "console": {
        "confirm_send": Option(bool, False, "ask before sending a reply"),
        "bell": Option(bool, True, "ring the terminal bell on new inbound messages"),
        "theme": Option(str, "textual-dark", "Textual theme name"),
    },
}

# Sections that hold one table per account, e.g. [email.work]: channel -> options.
# Each connector module registers its own options (see connectors/registry.py).
ACCOUNT_SECTIONS: dict[str, dict[str, Option]] = {}

# Free-form sections owned by a feature, validated by that feature's own function.
FREEFORM: dict[str, Callable[[Any], None]] = {}


@dataclass
class Config:
    path: Path | None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # channel -> name -> options
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        return self.sections[section][key]

    @property
    def agent(self) -> str:
        return self.sections["agent"]["name"]

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
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < opt.minimum:
        raise ConfigError(f"{where}: expected {opt.minimum:g} or more, got {value!r}")
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
    from connectors import registry  # registers connector options

    registry.load_all()

    cfg = Config(path=path)
    known = sorted(set(SECTIONS) | set(ACCOUNT_SECTIONS) | set(FREEFORM))
    for name in data:
        if name not in known:
            raise ConfigError(f"[{name}]: unknown section; expected one of {', '.join(known)}")
    for name, spec in SECTIONS.items():
        cfg.sections[name] = validate_table(name, spec, data.get(name, {}))
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
    return cfg


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
    try:
        return validate(data, path)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def resolve_secret(options: dict[str, Any], name: str, where: str) -> str | None:
    """Fetch a secret from wherever the config says. Errors name the source,
    never the value."""
    env = options.get(f"{name}_env")
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}.{name}_env: environment variable {env} is not set")
        return value
    command = options.get(f"{name}_command")
    if command:
        try:
            done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConfigError(f"{where}.{name}_command: could not run: {type(e).__name__}") from None
        if done.returncode != 0:
            raise ConfigError(f"{where}.{name}_command: exited with status {done.returncode}")
        value = done.stdout.strip()
        if not value:
            raise ConfigError(f"{where}.{name}_command: printed nothing")
        return value
    entry = options.get(f"{name}_keyring")
    if entry:
        service, _, user = entry.partition("/")
        try:
            import keyring

            value = keyring.get_password(service, user)
        except Exception as e:  # keyring backends raise their own types
            raise ConfigError(f"{where}.{name}_keyring: keyring unavailable: {type(e).__name__}") from None
        if not value:
            raise ConfigError(f"{where}.{name}_keyring: no entry for {entry!r}")
        return value
    return None
