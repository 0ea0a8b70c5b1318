"""Reply templates: written once in Markdown, adapted to each channel.

A template is `<config dir>/templates/<name>.md` (next to config.toml): an
optional TOML front matter between `+++` lines, then the Markdown body, then
optional per-channel bodies after a `<!-- channel: telegram -->` line (an HTML
comment, so the file still reads well on GitHub or in any Markdown viewer):

    +++
    description = "Where the order is"
    subject = "Your order {{ order_number }}"
    [prompts]
    eta = "Expected delivery day"
    +++
    Your order **{{ order_number }}** ships {{ eta }}.
    <!-- channel: telegram, slack -->
    Order {{ order_number }} ships {{ eta }} 🚚

Rendering is a substitution of `{{ name }}` or `{{ name | "fallback" }}`, nothing
more: no expressions, no code. Values are inserted as text (Markdown-escaped, or
made safe for the code span / link they sit in) in one pass, so a customer's
`{{`, `*` or `<b>` is never interpreted. A missing value stops the render with
every missing name listed: never a half-filled message.

The result's `source` is the Markdown to queue; the connectors turn it into
what is sent with connectors.formatting, so `parts` here is exactly that.
"""
from __future__ import annotations

import re
import secrets
import tomllib
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING

from connectors.paths import config_dir
from connectors.schema import ConfigError
from store.terms import CHANNELS as CHANNEL_LIST
from store.terms import Channel
from store.text import utf8_problem

if TYPE_CHECKING:
    from connectors.config import Config

CHANNELS = CHANNEL_LIST
CHANNEL_NAMES = {c.value: c.label for c in Channel}
STARTER_DIR = Path(__file__).with_name("starter_templates")

# Per-channel adaptation; [channels.<channel>] in config.toml overrides these.
# Chat gets no sign-off and never a signature block (that is an e-mail custom).
CHANNEL_DEFAULTS: dict[str, dict[str, str]] = {
    "email": {"greeting": 'Hello {{ first_name | "there" }},',
              "sign_off": "Best regards,\n{{ agent }}", "signature": ""},
    "telegram": {"greeting": 'Hi {{ first_name | "there" }}!', "sign_off": ""},
    "slack": {"greeting": 'Hi {{ first_name | "there" }},', "sign_off": ""},
}

_VAR = re.compile(r'(?<!\\)\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*"([^"{}]*)"\s*)?\}\}')
_CHANNEL_MARK = re.compile(r"^<!--\s*channel:\s*([a-z ,]+?)\s*-->\s*$", re.M)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FRONT_KEYS = {"description", "subject", "prompts", "greeting", "sign_off"}


class TemplateError(ConfigError):
    """A template that cannot be rendered, worded for the person fixing it.
    (A ConfigError: templates are configuration, and the CLI reports those.)"""


class MissingValues(TemplateError):
    def __init__(self, template: str, missing: list[tuple[str, str]]):
        self.template, self.missing = template, missing  # [(name, label)] for the composer to ask
        names = ", ".join(f"{n} ({label})" if label else n for n, label in missing)
        hint = " ".join(f"--set {n}=..." for n, _ in missing)
        super().__init__(f"template {template!r}: no value for {names}; give them with {hint}")


@dataclass
class Template:
    name: str
    body: str
    overrides: dict[str, str] = field(default_factory=dict)  # channel -> body
    subject: str | None = None
    description: str = ""
    prompts: dict[str, str] = field(default_factory=dict)  # name -> label shown to the agent
    greeting: bool | str = True  # True: the channel's greeting; False: none; str: this one
    sign_off: bool | str = True
    path: Path | None = None

    def variables(self, channel: str | None = None) -> list[str]:
        bodies = [self.overrides.get(channel, self.body)] if channel else [self.body, *self.overrides.values()]
        texts = bodies + [self.subject or ""] + [x for x in (self.greeting, self.sign_off) if isinstance(x, str)]
        return sorted({m.group(1) for t in texts for m in _VAR.finditer(t)})


@dataclass
class Rendered:
    channel: str
    subject: str | None
    source: str  # the Markdown to queue; connectors convert it into `parts`
    parts: list[str]  # what is sent: e-mail [text/plain], Telegram HTML, Slack mrkdwn
    text: str  # plain-text rendition (e-mail text/plain; a terminal preview for chat)
    html: str | None = None  # e-mail HTML alternative
    template: str | None = None
    # For an editor (the console's composer): `source` with the values as typed, and the
    # Markdown each such value stands for in `source` (shown -> Markdown; only those
    # that differ, e.g. "*urgent*" -> "\\*urgent\\*"). None: the same as `source`.
    display: str | None = None
    literals: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return self.source if self.display is None else self.display


# -- parsing -------------------------------------------------------------------
def parse(text: str, name: str = "template", path: Path | None = None) -> Template:
    where = str(path or name)
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    front: dict[str, Any] = {}
    if text.startswith("+++\n"):
        end = text.find("\n+++", 3)
        if end < 0:
            raise TemplateError(f"{where}: front matter opened with +++ is never closed")
        try:
            front = tomllib.loads(text[4:end])
        except tomllib.TOMLDecodeError as e:
            raise TemplateError(f"{where}: front matter is not valid TOML: {e}") from None
        text = text[end + 4:].lstrip("\n")
    unknown = sorted(set(front) - _FRONT_KEYS)
    if unknown:
        raise TemplateError(f"{where}: unknown front matter key {unknown[0]!r}; expected one of "
                            + ", ".join(sorted(_FRONT_KEYS)))
    chunks = _CHANNEL_MARK.split(text)  # [default, channels, body, channels, body, ...]
    overrides = {}
    for names, body in zip(chunks[1::2], chunks[2::2]):
        for ch in (n.strip() for n in names.split(",")):
            if ch not in CHANNELS:
                raise TemplateError(f"{where}: <!-- channel: {ch} -->: expected one of {', '.join(CHANNELS)}")
            overrides[ch] = body.strip("\n")
    prompts = front.get("prompts", {})
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise TemplateError(f'{where}: [prompts] must map names to labels, e.g. eta = "Expected delivery"')
    for key in prompts:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise TemplateError(f"{where}: prompt {key!r}: use letters, digits and _ (it is written {{{{ {key} }}}})")
    for key in ("greeting", "sign_off"):
        if not isinstance(front.get(key, True), (bool, str)):
            raise TemplateError(f"{where}: {key} must be true, false or a text")
    for key in ("subject", "description"):
        if not isinstance(front.get(key, ""), str):
            raise TemplateError(f"{where}: {key} must be a text")
    t = Template(name=name, body=chunks[0].strip("\n"), overrides=overrides, subject=front.get("subject"),
                 description=front.get("description", ""), prompts=prompts,
                 greeting=front.get("greeting", True), sign_off=front.get("sign_off", True), path=path)
    for piece in [t.body, *overrides.values(), t.subject or ""]:
        _check_syntax(piece, where)
    return t


def _check_syntax(text: str, where: str) -> None:
    """Every `{{` must be a plain variable: an expression is an error, not code."""
    rest = _VAR.sub("", text).replace("\\{{", "")  # \{{ is a literal {{
    if "{{" in rest:
        bad = rest[rest.find("{{"):][:40]
        raise TemplateError(f'{where}: {bad!r}: only {{{{ name }}}} or {{{{ name | "fallback" }}}} is allowed')


# -- files ------------------------------------------------------------------------
def templates_dir(config: Config | None = None) -> Path:
    """Templates live next to config.toml: <config dir>/templates."""
    return (config.base_dir if config else config_dir()) / "templates"


def list_templates(directory: Path | None = None, errors: list[str] | None = None,
                   broken: list[str] | None = None) -> list[Template]:
    """Every template in `directory`. A broken file raises TemplateError, unless
    `errors` is given: then its message goes there (and its name to `broken`)
    and the others are still listed."""
    directory = Path(directory) if directory else templates_dir()
    if not directory.is_dir():
        return []
    out = []
    for p in sorted(directory.glob("*.md")):
        try:
            out.append(load(p.stem, directory))
        except TemplateError as e:
            if errors is None:
                raise
            errors.append(str(e))
            if broken is not None:
                broken.append(p.stem)
    return out


def load(name: str, directory: Path | None = None) -> Template:
    directory = Path(directory) if directory else templates_dir()
    if not _NAME.fullmatch(name or ""):
        raise TemplateError(f"{name!r} is not a template name (letters, digits, - _ .)")
    path = directory / f"{name}.md"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.md"))) if directory.is_dir() else ""
        raise TemplateError(f"no template {name!r} in {directory}" + (f" (have: {known})" if known else
                            " (`omnidesk init` installs the starter set)"))
    try:
        return parse(path.read_text(encoding="utf-8"), name, path)
    except UnicodeDecodeError as e:
        raise TemplateError(utf8_problem(str(path), e)) from None
    except OSError as e:
        raise TemplateError(f"{path}: cannot read: {e.strerror or e}") from None


def install_starter_templates(dest: Path | None = None) -> list[Path]:
    """Copy the starter set into `dest`; files that exist (maybe edited) are left alone."""
    dest = Path(dest) if dest else templates_dir()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted([*STARTER_DIR.glob("*.md"), STARTER_DIR / "README.txt"]):
        target = dest / src.name
        try:
            with open(target, "x", encoding="utf-8") as f:  # "x": never overwrite, even in a race
                f.write(src.read_text(encoding="utf-8"))
            written.append(target)
        except FileExistsError:
            pass
    return written


# -- channel settings -----------------------------------------------------------------
def validate_channels(table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError("[channels]: expected tables like [channels.email]")
    for channel, opts in table.items():
        if channel not in CHANNELS:
            raise ConfigError(f"[channels.{channel}]: unknown channel; expected one of {', '.join(CHANNELS)}")
        if not isinstance(opts, dict):
            raise ConfigError(f"[channels.{channel}]: expected a table")
        allowed = CHANNEL_DEFAULTS[channel]
        for key, value in opts.items():
            if key not in allowed:
                why = " (chat messages carry no signature block)" if key == "signature" else ""
                raise ConfigError(f"channels.{channel}.{key}: unknown key; expected one of "
                                  f"{', '.join(allowed)}{why}")
            if not isinstance(value, str):
                raise ConfigError(f"channels.{channel}.{key}: expected a string, got {value!r}")
            _check_syntax(value, f"channels.{channel}.{key}")




def channels_config_example() -> str:
    """The [channels.*] tables with their defaults, as valid TOML, for `omnidesk
    init` to add to the config it writes (as is, or commented out)."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("How replies adapt per channel; {{ variables }} as in templates."))
    doc.add(tomlkit.comment("Templates use the greeting and sign-off shown here (their defaults). A reply you"))
    doc.add(tomlkit.comment("type gets no greeting, and the sign-off only once you set it: uncomment"))
    doc.add(tomlkit.comment("[channels.email] and sign_off to end every e-mail with it, typed or not."))
    doc.add(tomlkit.comment("Chat messages never carry a signature block."))
    channels = tomlkit.table(is_super_table=True)
    for channel, defaults in CHANNEL_DEFAULTS.items():
        table = tomlkit.table()
        for key, value in defaults.items():
            table.add(key, value)
        channels.add(channel, table)
    doc.add("channels", channels)
    return tomlkit.dumps(doc)


def channel_settings(channel: str, config: Config | None = None) -> dict[str, str]:
    if channel not in CHANNELS:
        raise TemplateError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    user = ((config.extra.get("channels") if config else None) or {}).get(channel, {})
    return {**CHANNEL_DEFAULTS[channel], **user}


# -- context --------------------------------------------------------------------------
def fact_key(key: str) -> str:
    """Facts become variables: "Order number" -> order_number."""
    return re.sub(r"[^0-9a-z]+", "_", key.strip().lower()).strip("_")


def first_name(name: str) -> str:
    name = (name or "").strip()
    if not name or "@" in name.lstrip("@") or name.isdigit():  # an address or id, not a name
        return ""
    return name.lstrip("@").split()[0]


def context_for(customer_name: str = "", agent: str = "", channel: str = "", facts: dict | None = None,
                values: dict | None = None) -> dict[str, str]:
    """Variables a template can use. Explicit values (prompts, --set) win over facts,
    facts over the built-ins."""
    ctx = {"name": customer_name or "", "customer_name": customer_name or "",
           "first_name": first_name(customer_name), "agent": agent or "",
           "agent_first_name": first_name(agent), "channel": channel,
           "channel_name": CHANNEL_NAMES.get(channel, channel)}
    ctx.update({fact_key(k): str(v) for k, v in (facts or {}).items() if fact_key(k)})
    ctx.update({k: str(v) for k, v in (values or {}).items()})
    return ctx


# -- substitution ---------------------------------------------------------------------
# What Markdown (CommonMark + strikethrough, no HTML) could read as markup in a
# value: only these get a backslash, so a value reads as typed in the composer,
# the queue and search ("https://t.example/a-1", "#1042", "O'Brien" stay as they are).
_INLINE = re.compile(r"""\\(?=[!-/:-@\[-`{-~]|$)|[`*\[<]|~(?=~)|(?<=~)~|&(?=#?\w+;)"""
                     r"|(?<![^\W_])_|_(?![^\W_])")
_LINE_START = re.compile(r"^(?:#{1,6}(?=\s|$)|>|[-+](?=\s|$)|[-=]+\s*$)")
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def escape_markdown(value: str) -> str:
    """Text that Markdown shows as is: a backslash before what would be markup
    (emphasis, code, links, entities, headings, lists, quotes), nothing else;
    no leading indentation (it would make a code block)."""
    out = []
    for line in value.splitlines():
        line = _INLINE.sub(lambda m: "\\" + m.group(0), line.strip())
        line = _LINE_START.sub(lambda m: "\\" + m.group(0), line)
        out.append(_ORDERED.sub(r"\1\\\2", line))
    return "\n".join(out)


def _contexts(marked: str, mark: str) -> dict[int, str]:
    """Where each placeholder sits in the Markdown: "code", "url" or text."""
    from connectors import formatting  # markdown-it: loaded when a template is rendered

    found: dict[int, str] = {}

    def note(text: str, kind: str) -> None:
        for m in re.finditer(mark + r"(\d+)Z", text or ""):
            found.setdefault(int(m.group(1)), kind)

    def walk(tokens) -> None:
        for tok in tokens:
            if tok.type in ("code_inline", "fence", "code_block"):
                note(tok.content, "code")
            for attr in ("href", "src"):
                if tok.attrs.get(attr):
                    note(urllib.parse.unquote(str(tok.attrs[attr])), "url")
            walk(tok.children or [])

    walk(formatting._MD.parse(marked))
    return found


# Right-to-left letters and bidi controls in a value could reorder the words of
# our message around it (U+202E turns "order 12" into "21 redro"): such values
# go inside an isolate (FSI ... PDI), which also ends any override they open.
_BIDI = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _isolate(line: str) -> str:
    return f"\u2068{line}\u2069" if _BIDI.search(line) else line


def _clean(value: str) -> str:
    """No control characters (escape sequences, NUL) from a value, whatever its source."""
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")


def _encode(value: str, kind: str) -> str:
    value = _clean(value)
    if kind == "url":
        return urllib.parse.quote(value.strip(), safe=":/?#@!$&'*+,;=%~[]")
    if kind == "code":  # a backtick would end the code span; newlines would end it too
        return _isolate(" ".join(value.replace("`", "\u02cb").split()))
    return "\n".join(_isolate(line) for line in escape_markdown(value).split("\n"))


def _as_typed(value: str) -> str:
    """A value as the agent reads it in the composer: what `_encode` makes of it, minus
    the backslashes (same lines, same isolation)."""
    return "\n".join(_isolate(line.strip()) for line in _clean(value).splitlines())


def fill(text: str, ctx: dict[str, str], where: str, prompts: dict[str, str] | None = None,
         plain: bool = False) -> str:
    """Substitute every placeholder in one pass. `plain` (the Subject) takes values
    as one line of text; otherwise the text is Markdown and values are made inert."""
    return fill_shown(text, ctx, where, prompts, plain)[0]


def fill_shown(text: str, ctx: dict[str, str], where: str, prompts: dict[str, str] | None = None,
               plain: bool = False) -> tuple[str, str, dict[str, str]]:
    """`fill`, plus the text with each value as typed and {value as typed: its Markdown}
    for the values whose Markdown differs (they carry backslashes)."""
    _check_syntax(text, where)
    matches = list(_VAR.finditer(text))
    missing = [(m.group(1), (prompts or {}).get(m.group(1), "")) for m in matches
               if not (ctx.get(m.group(1)) or "").strip() and m.group(2) is None]
    if missing:
        raise MissingValues(where, list(dict.fromkeys(missing)))
    mark = "Zq" + secrets.token_hex(4) + "v"  # letters and digits: Markdown leaves it alone
    out, last = [], 0
    for i, m in enumerate(matches):
        out.append(text[last:m.start()])
        out.append(f"{mark}{i}Z")
        last = m.end()
    out.append(text[last:])
    marked = "".join(out).replace("\\{{", "{{")
    kinds = {} if plain else _contexts(marked, mark)

    literals: dict[str, str] = {}

    def value(i: int, shown: bool = False) -> str:
        m = matches[i]
        v = ctx.get(m.group(1)) or ""
        if not v.strip():
            return m.group(2)  # the template author's fallback: trusted, used as written
        if plain:
            return _isolate(" ".join(_clean(v).split()))  # a Subject is one line: no header injection
        md = _encode(v, kinds.get(i, "text"))
        if not shown or kinds.get(i, "text") != "text":
            return md  # a code span's or a link's form is what is shown too
        typed = _as_typed(v)
        if typed != md:
            literals[typed] = md
        return typed

    source = re.sub(mark + r"(\d+)Z", lambda m: value(int(m.group(1))), marked)
    shown = re.sub(mark + r"(\d+)Z", lambda m: value(int(m.group(1)), shown=True), marked)
    return source, shown, literals


def to_markdown(text: str, literals: dict[str, str]) -> str:
    """An editor's text back into Markdown: each value still there as typed (a key of
    `literals`) becomes its Markdown again, so it is sent as typed, never as markup."""
    if not literals:
        return text
    keys = sorted(literals, key=len, reverse=True)  # the longest first; one pass, no re-matching
    return re.sub("|".join(re.escape(k) for k in keys), lambda m: literals[m.group(0)], text)


# -- rendering ----------------------------------------------------------------------------
def finish(channel: str, source: str, subject: str | None = None, template: str | None = None) -> Rendered:
    """What `source` becomes on `channel`: the same calls the connectors make."""
    from connectors import formatting  # markdown-it: loaded when a template is rendered

    if channel == "email":
        plain, html = formatting.email_bodies(source)
        return Rendered(channel, subject, source, [plain], plain, html, template)
    parts = formatting.telegram_parts(source) if channel == "telegram" else formatting.slack_parts(source)
    return Rendered(channel, None, source, parts, formatting.plain_text(source), None, template)


def _compose(body_md: str, channel: str, settings: dict[str, str], greeting: bool | str,
             sign_off: bool | str) -> str:
    pieces = []
    if greeting:
        pieces.append(greeting if isinstance(greeting, str) else settings.get("greeting", ""))
    pieces.append(body_md)
    if sign_off:
        pieces.append(sign_off if isinstance(sign_off, str) else settings.get("sign_off", ""))
    if channel == "email" and settings.get("signature", "").strip():
        # "-- " on its own line: mail clients recognise and trim the signature in replies
        pieces.append("-- \n" + settings["signature"].strip("\n"))
    return "\n\n".join(p.strip("\n") for p in pieces if p and p.strip())


def render(template: str | Template, channel: str, context: dict[str, str], *,
           config: Config | None = None, directory: Path | None = None, greeting: bool = True) -> Rendered:
    """Render a template (a name in the templates folder, or a parsed Template) for
    `channel`: greeting, body, sign-off and (e-mail) signature, then the channel's form.
    `greeting=False`: without the greeting (the template goes into a reply already begun)."""
    t = template if isinstance(template, Template) else load(template, directory or templates_dir(config))
    settings = channel_settings(channel, config)
    ctx = {**context, "channel": channel, "channel_name": CHANNEL_NAMES[channel]}
    source_t = _compose(t.overrides.get(channel, t.body), channel, settings, t.greeting if greeting else False,
                        t.sign_off)
    missing: list[tuple[str, str]] = []
    subject = None
    try:
        source, shown, literals = fill_shown(source_t, ctx, t.name, t.prompts)
    except MissingValues as e:
        missing += e.missing
    if channel == "email" and t.subject:
        try:
            subject = fill(t.subject, ctx, t.name, t.prompts, plain=True)
        except MissingValues as e:
            missing += e.missing
    if missing:  # all of them at once, so the agent fills everything in one go
        raise MissingValues(t.name, list(dict.fromkeys(missing)))
    rendered = finish(channel, source, subject, t.name)
    rendered.display, rendered.literals = shown, literals
    return rendered


def preview(md_text: str, channel: str, context: dict[str, str] | None = None, *,
            config: Config | None = None, subject: str | None = None) -> Rendered:
    """Free text typed by the agent, exactly as it will be sent. The agent's own
    words are not a template (no `{{ }}` substitution). E-mail adds the signature,
    and the sign-off when [channels.email] sets one: every e-mail ends the same way,
    typed or not, and only once (not when the text has it already, from a template
    or typed, nor when its last line is the agent's name: they signed it)."""
    settings = channel_settings(channel, config)
    ctx = {**(context or {}), "channel": channel, "channel_name": CHANNEL_NAMES[channel]}
    sig = sign_off = ""
    if channel == "email" and settings.get("signature", "").strip() and "-- \n" not in md_text:  # not twice
        sig = fill(settings["signature"], ctx, "signature")
    user = ((config.extra.get("channels") if config else None) or {}).get(channel, {})
    if channel == "email" and str(user.get("sign_off", "")).strip():
        sign_off = fill(user["sign_off"], ctx, "sign_off")
        if _signed(md_text, sign_off, ctx.get("agent", "")):
            sign_off = ""
    source = _compose(md_text, channel, {"signature": sig}, False, sign_off or False)
    return finish(channel, source, subject if channel == "email" else None)


def _signed(text: str, sign_off: str, agent: str) -> bool:
    """Does the reply end signed already: the sign-off in it, or the agent's name
    (or first name) as its last line?"""
    squash = " ".join
    if squash(sign_off.replace("\\", "").split()) in squash(text.replace("\\", "").split()):
        return True
    last = next((line.strip().rstrip(".,!") for line in reversed(text.splitlines()) if line.strip()), "")
    names = {agent.strip(), agent.strip().split(" ")[0]} - {""}
    return bool(last) and last in names


def customer_context(store, customer_id: int, channel: str, agent: str,
                     values: dict[str, str] | None = None) -> dict[str, str]:
    c = store.customer(customer_id)
    return context_for(c.name, agent, channel, c.facts, values)


def render_for_customer(store, customer_id: int, name: str, channel: str, agent: str,
                        values: dict[str, str] | None = None, *, config: Config | None = None,
                        directory: Path | None = None, greeting: bool = True) -> Rendered:
    """What `omnidesk reply --template` and `templates render` queue/show."""
    ctx = customer_context(store, customer_id, channel, agent, values)
    return render(name, channel, ctx, config=config, directory=directory, greeting=greeting)


def preview_for_customer(store, customer_id: int, md_text: str, channel: str, agent: str, *,
                         config: Config | None = None, subject: str | None = None) -> Rendered:
    return preview(md_text, channel, customer_context(store, customer_id, channel, agent),
                   config=config, subject=subject)
