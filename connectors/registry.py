"""Which connector module serves which channel.

Each channel module exposes `OPTIONS` (its config table's keys) and
`build(account, options, config) -> Connector`. They are imported lazily so
that a missing optional library only affects its own channel.
"""
from __future__ import annotations

import importlib
from typing import Any

from connectors import config as config_mod

MODULES = {
    "email": "connectors.email",
    "telegram": "connectors.telegram",
    "slack": "connectors.slack",
}


def load_all() -> None:
    # the free-form sections: [channels] (templates), [targets] [[hook]] [satisfaction] (automation)
    for module in ("connectors.desk.templates", "connectors.desk.automation"):
        importlib.import_module(module)
    for channel, module in MODULES.items():
        if channel in config_mod.ACCOUNT_SECTIONS:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # channel not built yet
                continue
            raise
        config_mod.ACCOUNT_SECTIONS[channel] = mod.OPTIONS


def build_all(cfg: config_mod.Config) -> list[Any]:
    """Build a connector for every configured account."""
    out = []
    for channel, accounts in cfg.accounts.items():
        mod = importlib.import_module(MODULES[channel])
        for account, options in accounts.items():
            out.append(mod.build(account, options, cfg))
    return out
