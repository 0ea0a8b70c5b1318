"""`omnidesk rules list` and `omnidesk rules test`: see what rules.toml says and
what it would do, without changing anything."""
from __future__ import annotations

import json
import time

from console.commands.common import cell, iso, since


def register(sub, parents) -> None:
    p = sub.add_parser("rules", parents=parents, help="triage rules: list them, or test them on stored messages",
                       description="Rules live in rules.toml next to config.toml.")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p_list = rsub.add_parser("list", parents=parents, help="the rules, in the order they are checked")
    p_list.set_defaults(func=cmd_list)
    p_test = rsub.add_parser("test", parents=parents,
                             help="what the rules would do to stored messages (changes nothing)")
    p_test.add_argument("--since", default="7d", help="messages since 7d, 24h or a date (default: 7d)")
    p_test.add_argument("--file", help="test this rules file instead of the configured one")
    p_test.set_defaults(func=cmd_test)


def _load(ctx, path=None):
    from connectors.desk import rules as rules_mod

    return rules_mod.load_rules(path or rules_mod.rules_path(ctx.config))


def cmd_list(args, ctx) -> int:
    ruleset = _load(ctx)
    data = [{"name": r.name, "on": r.on, "when": r.source["when"], "then": r.source["then"], "stop": r.stop}
            for r in ruleset.rules]
    data += [{"name": f.name, "on": "fact", "pattern": f.source, "channel": f.channels or "any"} for f in ruleset.facts]

    def human(_):
        if not data:
            return f"No rules ({ruleset.path} does not exist or has no [[rule]] or [[fact]] tables)."
        out = []
        for n, r in enumerate(data, 1):
            if r["on"] == "fact":
                where = "any channel" if r["channel"] == "any" else ", ".join(r["channel"])
                out.append(f"{n:>3}. fact {r['name']}  [{where}]\n     pattern {r['pattern']}")
                continue
            when = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in r["when"].items()) or "always"
            then = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in r["then"].items())
            out.append(f"{n:>3}. {r['name']}  [{r['on']}]{'  (stop)' if r['stop'] else ''}\n"
                       f"     when {when}\n     then {then}")
        return "\n".join(out)

    ctx.emit(data, human)
    return 0


def cmd_test(args, ctx) -> int:
    from connectors.desk.automation import Automation

    ruleset = _load(ctx, args.file)
    start = since(args.since, time.time())
    auto = Automation(ctx.config, rules=ruleset, rules_path=ruleset.path)
    try:
        hits = auto.dry_run(ctx.store, start)
    finally:
        auto.close()

    def human(hits):
        if not ruleset.rules and not ruleset.facts:
            return f"No rules to test ({ruleset.path})."
        if not hits:
            return "No rule would fire."
        out = []
        for h in hits:
            what = f"message #{h['message_id']}" if h["on"] in ("message", "fact") else "waiting now"
            if h.get("error"):
                out.append(f"{iso(h['at'])}  #{h['customer_id']} {what}: {cell(h['error'], 120)}")
                continue
            if h["on"] == "fact":  # the value is customer text: one inert line
                out.append(f"{iso(h['at'])}  #{h['customer_id']} {cell(h['customer'], 24):<24} {h['channel']:<8} "
                           f"{what}: captures {h['rule']} = {cell(h['fact']['value'], 60)}"
                           + ("  (already current)" if h["already_fired"] else ""))
                continue
            note = "  (already fired in this wait)" if h["already_fired"] else ""
            out.append(f"{iso(h['at'])}  #{h['customer_id']} {cell(h['customer'], 24):<24} {h['channel'] or '-':<8} "
                       f"{what}: {h['rule']} -> {'; '.join(h['actions'])}{note}")
        counts: dict[str, int] = {}
        fired: dict[str, int] = {}
        for h in hits:  # a hit already fired in this wait would not fire again
            if h.get("error"):
                continue
            name = f"fact {h['rule']}" if h["on"] == "fact" else h["rule"]
            into = fired if h.get("already_fired") else counts
            into[name] = into.get(name, 0) + 1
        out.append("")
        if counts:
            out.append("Would fire: " + ", ".join(f"{name} ×{n}" for name, n in counts.items()))
        if fired:
            out.append("Already fired (not again): " + ", ".join(f"{name} ×{n}" for name, n in fired.items()))
        return "\n".join(out)

    ctx.emit([{**h, "at": iso(h["at"])} for h in hits], lambda _: human(hits))
    return 0
