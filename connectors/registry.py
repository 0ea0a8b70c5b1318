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


def build_all(cfg: Config, *, strict: bool = True) -> list[Any]:
    """Build a connector for every configured account. A bad one (its token's variable
    unset, a password command failing): ConfigError naming it, or with `strict=False`
    an UnavailableAccount in its place, so the others run and its health says why."""
    from connectors.schema import ConfigError  # (not connectors.config: it imports the desk's policy)

    out = []
    for channel, accounts in cfg.accounts.items():
        if not accounts:
            continue
        mod = module_for(channel)
        for account, options in accounts.items():
            try:
                out.append(mod.build(account, options, cfg))
            except ConfigError as e:
                if strict:
                    raise
                out.append(UnavailableAccount(channel, account, str(e)))
    return out


class UnavailableAccount:
    """An account the config names but that cannot be built yet (a newcomer still
    waiting for a bot token). It fetches nothing and sends nothing; its health is
    "failed" with the reason, and replies to it fail with that reason (`R` or
    `omnidesk retry` sends them once it is set up and omnidesk restarted)."""

    def __init__(self, channel: str, account: str, problem: str):
        self.channel, self.account = channel, account
        self.problem = f"not set up: {problem}"

    @property
    def name(self) -> str:
        return f"{self.channel}:{self.account}"

    def fetch(self, cursor):
        from connectors.base import PermanentError

        raise PermanentError(self.problem)

    def wait(self, timeout: float, stop) -> None:
        stop.wait(timeout)

    def send(self, message):
        from connectors.base import PermanentError

        raise PermanentError(self.problem)

    def close(self) -> None:
        pass
