"""Which module builds the connectors of which channel.

Each channel module exposes `build(account, options, config) -> Connector`;
its options are declared in connectors/schema.py. Modules are imported only
when an account of that channel is built, so a command that builds none
(`omnidesk queue`) never loads python-telegram-bot or slack_sdk.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.config import Config

MODULES = {
    "email": "connectors.email",
    "telegram": "connectors.telegram",
    "slack": "connectors.slack",
}


def module_for(channel: str) -> Any:
    """The channel's module (imported now); KeyError for an unknown channel."""
    return importlib.import_module(MODULES[channel])


def build_all(cfg: Config) -> list[Any]:
    """Build a connector for every configured account; ConfigError names a bad one."""
    out = []
    for channel, accounts in cfg.accounts.items():
        if not accounts:
            continue
        mod = module_for(channel)
        for account, options in accounts.items():
            out.append(mod.build(account, options, cfg))
    return out
