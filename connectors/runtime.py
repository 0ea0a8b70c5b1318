"""The composition root: the engine for every configured account, with the desk's
automation (rules, targets, hooks, surveys) attached. `omnidesk sync`, the console and the
demo all start their engine here, so the engine itself never imports the desk's policy."""
from __future__ import annotations

from connectors import registry
from connectors.config import store_options
from connectors.desk import automation
from connectors.engine import Engine


def build_engine(store_path, cfg) -> "Engine | None":
    """The engine for every configured account, with the automation (rules,
    targets, hooks) attached; None when no channel is configured. An account that
    cannot be built (an unset token variable) does not stop the others: it shows as
    failed, with the reason, in health, the status bar and `sync --once`."""
    connectors = registry.build_all(cfg, strict=False)
    if not connectors:
        return None
    engine = Engine(
        store_path, connectors,
        poll_interval=cfg.get("sync", "poll_interval"), lease_seconds=cfg.get("sync", "lease_seconds"),
        max_attempts=cfg.get("sync", "max_attempts"),
        store_options={"max_attachment_bytes": cfg.get("attachments", "max_bytes"), **store_options(cfg)},
    )
    automation.attach(engine, cfg)
    return engine
