"""Secrets from where the config says: an environment variable, a command, or the keyring.

Secrets never live in the config file or the database; errors name the source
(`telegram.main.token_env: environment variable TG is not set`), never the value.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any

from connectors.schema import ConfigError


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
