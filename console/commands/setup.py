"""`omnidesk init` (first run) and `omnidesk doctor` (what works, what to fix)."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from connectors import schema
from store.terms import CHANNELS
from connectors.base import ConnectorError, PermanentError
from connectors.schema import ConfigError
from console.commands.common import UserError, plural
from store.errors import OmnideskError

if TYPE_CHECKING:
    import tomlkit

# Well-known providers: the e-mail domain is enough to fill in the servers.
# (imap host, smtp host, smtp port, smtp security, advice, other options to set)
Preset = tuple[str, str, int, str, str, dict[str, str]]
GMAIL: Preset = ("imap.gmail.com", "smtp.gmail.com", 465, "tls",
         "Gmail needs an app password: Google Account > Security > App passwords",
         {"sent_folder": ""})  # Gmail keeps a copy of sent mail by itself
OUTLOOK: Preset = ("outlook.office365.com", "smtp.office365.com", 587, "starttls",
           "Outlook.com may need an app password if two-step verification is on", {})
PROVIDERS = {
    "gmail.com": GMAIL,
    "googlemail.com": GMAIL,
    "outlook.com": OUTLOOK,
    "hotmail.com": OUTLOOK,
    "fastmail.com": ("imap.fastmail.com", "smtp.fastmail.com", 465, "tls",
                     "Fastmail needs an app password: Settings > Privacy & Security", {}),
    "icloud.com": ("imap.mail.me.com", "smtp.mail.me.com", 587, "starttls",
                   "iCloud needs an app-specific password: appleid.apple.com", {}),
}


def register(sub, parents) -> None:
    p = sub.add_parser("init", parents=parents, help="write a commented config, starter templates and the keymap",
                       description="First-run setup. Asks for the channels to set up, or takes flags for scripting.")
    p.add_argument("--name", help="your name, shown on replies")
    p.add_argument("--email", metavar="ADDRESS", help="set up this e-mail address")
    p.add_argument("--imap-host")
    p.add_argument("--smtp-host")
    p.add_argument("--maildir", metavar="PATH",
                   help="read mail from this Maildir (kept by mbsync/offlineimap) instead of an IMAP server")
    p.add_argument("--sendmail-command", metavar="CMD", help="with --maildir: the command that sends mail (msmtp -t)")
    p.add_argument("--password-env", metavar="VAR", help="e-mail password from this environment variable")
    p.add_argument("--password-command", metavar="CMD", help="e-mail password printed by this command")
    p.add_argument("--telegram-token-env", metavar="VAR", help="Telegram bot token from this environment variable")
    p.add_argument("--slack-token-env", metavar="VAR", help="Slack bot token (xoxb-) from this environment variable")
    p.add_argument("--slack-app-token-env", metavar="VAR", help="Slack app token (xapp-) for Socket Mode")
    p.add_argument("--yes", "-y", action="store_true", help="ask nothing; use the flags and defaults")
    p.add_argument("--force", action="store_true", help="replace an existing config (a .bak copy is kept)")
    p.add_argument("--shared", metavar="GROUP",
                   help="a store for a team: this Unix group gets read and write on the store, its WAL files and"
                        " attachments (nobody else); each member's console signs with their login name")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("doctor", parents=parents, help="check the config and reach every channel",
                       description="Checks the config, the store and each channel with its credentials, and says "
                                   "what works and what to fix.")
    p.set_defaults(func=cmd_doctor)


# -- init ---------------------------------------------------------------------------
def system_user_name() -> str:
    """The person's name as the system knows it: the full name in the user
    database (the GECOS field), else the login name."""
    try:
        import pwd

        full = pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0].strip()
    except (ImportError, KeyError):
        full = ""
    return full or os.environ.get("USER") or os.environ.get("USERNAME") or "agent"


def _ask(question: str, default: str = "") -> str:
    suffix = f" [{default}]" if default else ""
    try:
        answer = input(f"{question}{suffix}: ").strip()
    except EOFError:
        answer = ""
    return answer or default


def _yes(question: str) -> bool:
    return _ask(question + " (y/n)", "n").lower().startswith("y")


def _section_doc(name: str, spec: dict[str, schema.Option], values: dict, header: str) -> tomlkit.items.Table:
    """A table with every option: set ones as values, the rest as commented defaults."""
    import tomlkit

    table = tomlkit.table()
    table.add(tomlkit.comment(header))
    for key, opt in spec.items():
        if key in values:
            table.add(tomlkit.comment(opt.help))
            table.add(key, values[key])
        elif opt.default is not schema.REQUIRED and opt.default is not None and opt.default != "" \
                and not (type(opt.default) is int and opt.default == 0):  # 0 means "pick for me"
            table.add(tomlkit.comment(f"{key} = {tomlkit.item(opt.default).as_string()}  # {opt.help}"))
        else:
            table.add(tomlkit.comment(f"{key} = ...  # {opt.help}"))
    return table


def build_config(answers: dict) -> str:
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("omnidesk configuration. Reference: README.md > Your own channels."))
    doc.add(tomlkit.comment("Secrets are never written here: each names an env var, a command or a keyring entry."))
    doc.add(tomlkit.nl())
    doc.add("agent", _section_doc("agent", schema.SECTIONS["agent"], {"name": answers["name"]},
                                  "Who you are on replies and in the event log."))
    for name in ("sync", "store", "attachments", "console"):
        values = {"group": answers["store_group"]} if name == "store" and answers.get("store_group") else {}
        doc.add(name, _section_doc(name, schema.SECTIONS[name], values, f"[{name}] defaults; uncomment to change."))
    specs = schema.ACCOUNT_SECTIONS
    accounts = answers.get("accounts", {})
    for channel in CHANNELS:
        if channel in accounts and channel in specs:
            outer = tomlkit.table(is_super_table=True)
            outer.add("main", _section_doc(f"{channel}.main", specs[channel], accounts[channel],
                                           f"The {channel} account called 'main' (add more as [{channel}.other])."))
            doc.add(channel, outer)
    return tomlkit.dumps(doc)


def _commented_extras() -> str:
    """Per-channel greetings and signature, targets, hooks, satisfaction: all
    commented out, so the owner sees what exists without anything switched on."""
    from connectors.desk.automation import CONFIG_EXAMPLE
    from connectors.desk.templates import channels_config_example

    channels = "\n".join(line if not line.strip() or line.startswith("#") else f"# {line}"
                         for line in channels_config_example().splitlines())
    return "\n" + channels + "\n\n" + CONFIG_EXAMPLE


def _email_account(address: str, imap: str | None, smtp: str | None, pw_env: str | None,
                   pw_cmd: str | None) -> tuple[dict, str]:
    domain = address.rsplit("@", 1)[-1].lower()
    preset = PROVIDERS.get(domain)
    values: dict[str, str | int] = {"username": address, "from_address": address,
              "imap_host": imap or (preset[0] if preset else f"imap.{domain}")}
    values["smtp_host"] = smtp or (preset[1] if preset else f"smtp.{domain}")
    if preset:
        values["smtp_port"], values["smtp_security"] = preset[2], preset[3]
        values.update(preset[5])
    if pw_cmd:
        values["password_command"] = pw_cmd
    else:
        values["password_env"] = pw_env or "OMNIDESK_EMAIL_PASSWORD"
    return values, (preset[4] if preset else "")


def _default_sendmail() -> str:
    return "msmtp -t" if shutil.which("msmtp") else "sendmail -t -oi"


def _email_setup(args, address: str, interactive: bool) -> tuple[dict, str]:
    """The [email.main] values: IMAP/SMTP (the servers guessed from the address,
    shown for the person to confirm or change) or a Maildir with a send command."""
    maildir = args.maildir
    if interactive and not (maildir or args.imap_host or args.smtp_host):
        print("Where does your mail live?\n"
              "  1  an IMAP server, replies sent by SMTP (Gmail, Outlook, your provider)\n"
              "  2  a local Maildir kept by mbsync or offlineimap, replies sent by a command such as msmtp")
        if _ask("Choose 1 or 2", "1").strip() in ("2", "maildir"):
            maildir = _ask("Maildir folder", "~/Mail")
    if maildir:
        command = args.sendmail_command or _default_sendmail()
        if interactive and not args.sendmail_command:
            command = _ask("Command that sends a mail given on its input", command)
        return {"backend": "maildir", "maildir": maildir, "from_address": address,
                "sendmail_command": command}, ""
    values, note = _email_account(address, args.imap_host, args.smtp_host, args.password_env, args.password_command)
    if interactive:  # guesses are shown, never silently used
        if not args.imap_host:
            values["imap_host"] = _ask("IMAP server (incoming mail)", str(values["imap_host"]))
        if not args.smtp_host:
            port = values.get("smtp_port")
            values["smtp_host"] = _ask("SMTP server (outgoing mail" + (f", port {port}" if port else "") + ")",
                                       str(values["smtp_host"]))
    return values, note


def user_keymap(defaults: str, where) -> str:
    """The keymap init writes: the defaults, under a header that says this file is
    the person's own (not "copy a table to ..." the very file they are reading)."""
    head, sep, body = defaults.partition("\n\n")
    rules = [line for line in head.splitlines() if line.startswith("#     ") or "Textual key names" in line
             or "commas between" in line]
    header = ["# Your omnidesk key bindings: " + str(where), "#",
              "# Change any entry here; omnidesk reads this file when it starts. An entry you",
              "# delete (or a table you leave out) keeps the default, which `omnidesk keys",
              "# --defaults` lists. One table per context; each entry is", *rules]
    return "\n".join(header) + sep + body


def cmd_init(args, ctx) -> int:
    path = ctx.config_path
    home = Path.home()
    if path.expanduser().resolve().parent == home.resolve():  # templates/, rules.toml, keybindings.toml go beside it
        suggestion = f"{home / '.config' / 'omnidesk' / path.name} or {home / path.stem / 'config.toml'}"
        raise UserError(f"{path}: omnidesk keeps templates/, rules.toml and keybindings.toml beside its config file;"
                        f" put the config in a folder of its own, like {suggestion}")
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; edit it, or run `omnidesk init --force` to start over (a .bak is kept)")
    if args.shared:
        import grp

        try:
            grp.getgrnam(args.shared)
        except KeyError:
            raise UserError(f"--shared {args.shared}: no such Unix group (create it: groupadd {args.shared})") from None
    interactive = not args.yes and sys.stdin.isatty()
    answers: dict = {"name": args.name or system_user_name(), "accounts": {}, "store_group": args.shared}
    notes: list[str] = []
    if interactive and not args.name:  # templates introduce and sign with it: "I'm Sam", "Best regards, Sam"
        answers["name"] = _ask("Your name, as customers see it (templates sign with it)", answers["name"])
    email_address = args.email or (interactive and _yes("Set up e-mail?") and _ask("E-mail address"))
    if email_address:
        values, note = _email_setup(args, email_address, interactive)
        answers["accounts"]["email"] = values
        if note:
            notes.append(note)
        if "password_env" in values:
            notes.append(f"export {values['password_env']}=... (your mail password) before starting omnidesk")
    tg = args.telegram_token_env or (interactive and _yes("Set up Telegram?") and "OMNIDESK_TELEGRAM_TOKEN")
    if tg:
        answers["accounts"]["telegram"] = {"token_env": tg}
        notes.append(f"export {tg}=... (the token @BotFather gave you)")
    slack = args.slack_token_env or (interactive and _yes("Set up Slack?") and "OMNIDESK_SLACK_TOKEN")
    if slack:
        values = {"token_env": slack}
        if args.slack_app_token_env:
            values["app_token_env"] = args.slack_app_token_env
        answers["accounts"]["slack"] = values
        notes.append(f"export {slack}=xoxb-... (the bot token of your Slack app)")

    import tomlkit

    from connectors import config as config_mod

    text = build_config(answers) + _commented_extras()
    config_mod.validate(tomlkit.parse(text).unwrap(), path)  # never write a config we would reject
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    if args.shared:  # the team's store exists from now on, shared with the group
        from store import Store

        Store(ctx.db_path, group=args.shared).close()
        notes.append(f"store {ctx.db_path}: shared with the group {args.shared} (read and write; nobody else)")

    from connectors.desk.templates import install_starter_templates

    tdir = path.parent / "templates"
    installed = install_starter_templates(tdir)
    # count templates (the *.md files), not the README beside them; say so when they were there already
    new_templates = [p for p in installed if p.suffix == ".md"]
    kept = len(list(tdir.glob("*.md"))) - len(new_templates)
    if new_templates:
        templates_line = f"templates: {plural(len(new_templates), 'template')} installed in {tdir}" + (
            f" ({kept} already there, kept as they are)" if kept else "")
    else:
        templates_line = f"templates: {plural(kept, 'template')} already in {tdir}, kept as they are"
    from connectors.desk.rules import install_example

    rules = install_example(path.parent / "rules.toml")
    keymap_dest = path.parent / "keybindings.toml"
    from console.keymap import default_path

    if not keymap_dest.exists():
        keymap_dest.write_text(user_keymap(default_path().read_text(encoding="utf-8"), keymap_dest), encoding="utf-8")
    data = {"config": str(path), "templates": [str(p) for p in installed], "keymap": str(keymap_dest),
            "rules": str(rules) if rules else None,
            "channels": sorted(answers["accounts"]), "next": notes}
    lines = [f"wrote {path}", templates_line,
             f"keymap: {keymap_dest}", f"rules: {rules or 'kept the existing rules.toml'}"]
    lines += [f"next: {n}" for n in notes]
    lines.append("then: omnidesk doctor   (checks every channel), omnidesk   (opens the console)")
    ctx.emit(data, "\n".join(lines))
    return 0


# -- doctor ---------------------------------------------------------------------------
ADVICE = {
    "email": "check imap_host/smtp_host, the password (many providers need an app password) and folders",
    "email:maildir": "check maildir, folders and sendmail_command in the config",
    "telegram": "check the bot token from @BotFather (Telegram: /mybots > API Token)",
    "slack": "check the bot token (xoxb-...) and that the app is installed in the workspace",
}


_UNSET = re.compile(r"\.(\w+)_env: environment variable (\S+) is not set")
_SECRET_WORDS = {"password": "your mail password", "token": "the token", "app_token": "the app token (xapp-)",
                 "signing_secret": "the signing secret"}


def _secret_fix(detail: str) -> str | None:
    """For a secret whose environment variable is not set: exactly what to do."""
    unset = _UNSET.search(detail)
    if unset is None:
        return None
    name, var = unset.groups()
    what = _SECRET_WORDS.get(name, f"the {name.replace('_', ' ')}")
    return (f"export {var}=... ({what}) in the shell that starts omnidesk, or take it from elsewhere in the"
            f" config: {name}_command = \"pass show omnidesk/{name}\" or {name}_keyring = \"omnidesk/{name}\"")


def _check_account(channel: str, account: str, options: dict, cfg) -> dict:
    result = _probe_account(channel, account, options, cfg)
    fix = None if result["ok"] else _secret_fix(result["detail"])
    if fix:  # not a refusal by the server: nothing was tried without the secret
        result["detail"], result["fix"] = result["detail"].removeprefix("refused: "), fix
    return result


def _probe_account(channel: str, account: str, options: dict, cfg) -> dict:
    from connectors import registry

    name = f"{channel}:{account}"
    advice = ADVICE[channel]
    if channel == "email" and options.get("backend") == "maildir":
        advice = ADVICE["email:maildir"]
    try:
        connector = registry.module_for(channel).build(account, options, cfg)
    except ConfigError as e:
        return {"channel": name, "ok": False, "detail": str(e), "fix": "fix the config entry named above"}
    try:
        probe = getattr(connector, "probe", None)
        if probe is None:
            return {"channel": name, "ok": True, "detail": "configured (this channel has no live check)", "fix": ""}
        return {"channel": name, "ok": True, "detail": probe(), "fix": ""}
    except PermanentError as e:
        return {"channel": name, "ok": False, "detail": f"refused: {e}", "fix": advice}
    except ConnectorError as e:
        fix = "check the server address and your network" if advice is ADVICE[channel] else advice
        return {"channel": name, "ok": False, "detail": f"cannot reach it: {e}",
                "fix": f"{fix}; omnidesk retries by itself once it works"}
    except Exception as e:  # a library error we did not foresee: still say something useful
        text = connector.scrub(str(e)) if hasattr(connector, "scrub") else str(e)
        return {"channel": name, "ok": False, "detail": f"{type(e).__name__}: {text}", "fix": advice}
    finally:
        try:
            connector.close()
        except Exception:
            pass


def _check_sync(s) -> dict:
    """The running sync engine, if any: who holds the polling lease, and whether
    all its threads are alive (its own health row, "sync")."""
    import time

    holder = s.lease_holder()
    row = s.health().get("sync")
    if holder is None or time.time() - holder[1] > 120:
        return {"channel": "sync", "ok": True, "fix": "",
                "detail": "not running now (the console or `omnidesk sync` runs it)"}
    from connectors.lease import describe

    who = describe(holder[0], holder[1])
    if row and row["state"] != "ok":
        return {"channel": "sync", "ok": False, "detail": f"{who}: {row['detail']}",
                "fix": "restart `omnidesk sync` (or the console) and look at its log"}
    return {"channel": "sync", "ok": True, "fix": "",
            "detail": f"running in {who}" + (f", {row['detail']}" if row else "")}


def cmd_doctor(args, ctx) -> int:
    checks = []
    try:
        cfg = ctx.config
        if ctx.config_path.exists():
            checks.append({"channel": "config", "ok": True, "detail": f"{ctx.config_path} is valid", "fix": ""})
        else:  # defaults work, but nothing is set up: not "ok"
            checks.append({"channel": "config", "ok": False, "detail": f"{ctx.config_path} does not exist",
                           "fix": "run `omnidesk init` to write one"})
    except OmnideskError as e:  # ConfigError, or a --config/OMNIDESK_CONFIG file that is not there
        checks.append({"channel": "config", "ok": False, "detail": str(e),
                       "fix": "run `omnidesk init`" if not ctx.config_path.exists() else "edit the config file"})
        cfg = None
    try:
        if cfg is None:  # the store can still be checked without a usable config
            from store import Store

            s = Store(ctx.db_path)
        else:
            s = ctx.store
        checks.append({"channel": "store", "ok": True,
                       "detail": f"{ctx.db_path}: schema v{s.version}, "
                                 f"{plural(s.message_count(), 'message')}", "fix": ""})
    except Exception as e:
        checks.append({"channel": "store", "ok": False, "detail": f"{ctx.db_path}: {e}",
                       "fix": "check the path and its permissions (--db or OMNIDESK_DB)"})
    else:
        checks.append(_check_sync(s))
    if cfg is not None:
        from connectors.desk.automation import check_rules

        ok, detail = check_rules(cfg)
        checks.append({"channel": "rules", "ok": ok, "detail": detail,
                       "fix": "" if ok else f"edit {cfg.base_dir / 'rules.toml'}"})
        if not any(cfg.accounts.values()):
            checks.append({"channel": "channels", "ok": False, "detail": "no channel is configured",
                           "fix": "run `omnidesk init`, or add [email.main], [telegram.main] or [slack.main]"})
        for channel, accounts in cfg.accounts.items():
            for account, options in accounts.items():
                checks.append(_check_account(channel, account, options, cfg))

    def human(rows):
        out = []
        for r in rows:
            out.append(f"{'ok  ' if r['ok'] else 'FIX '} {r['channel']}: {r['detail']}")
            if r["fix"]:
                out.append(f"      -> {r['fix']}")
        return "\n".join(out)

    ctx.emit(checks, human)
    return 0 if all(r["ok"] for r in checks) else 1
