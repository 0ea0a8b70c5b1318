"""The reply and template flow: from the composer's text to a queued reply.

The composer asks (typed messages: Send, PickChannel, PickTemplate, Leave);
this room answers: the channel picker, the template picker and the prompts for
a template's missing values, the confirmation (when [console] confirm_send),
and the write that queues the reply for the engine's outbox.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

from connectors.limits import over_limit
from pathlib import Path

from console.screens.pickers import ConfirmScreen, PathSuggester, PickerScreen, PromptScreen
from console.widgets.badges import CHANNEL_NAME, badge, color
from console.widgets.composer import Composer, InsertedTemplate
from console.widgets.outgoing import list_templates, outgoing, preview, render_template
from console.triage import titled
from console.widgets.safe_text import one_line
from connectors.limits import file_too_big, read_attachment
from store import Store

if TYPE_CHECKING:
    from console.desk import DeskScreen


class Reply:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app

    def make_outgoing(self, customer_id: int, text: str, channel: str, subject: str | None = None):
        """The reply exactly as it will be queued and sent on `channel`."""
        app = self.app
        return outgoing(app.store, customer_id, text, channel, app.agent, app.config, subject)

    # -- sending -----------------------------------------------------------------------
    def send(self, event: Composer.Send) -> None:
        agent = self.app.agent
        if event.mode == "note":
            def note(s: Store):
                with s.tx():  # the draft goes with the note it became
                    s.add_note(event.customer_id, event.text, agent)
                    s.delete_draft(agent, event.customer_id)
            self.desk.write(note, done="note added", then=lambda _: self._sent(event.customer_id))
            return
        ident = self.desk.composer.identity
        if ident is None:
            self.app.notify("This customer has no channel to reply on.", severity="error")
            return
        from store.outbox import usable_address

        if not usable_address(ident.channel, ident.address):  # their mail came without a sender
            self.app.notify("No e-mail address for them: e → add an e-mail address", severity="error")
            return
        if self.desk.composer.template_stale():  # never another channel's version: adapt it first
            self.adapt_template()
            return
        try:
            out = self.make_outgoing(event.customer_id, event.text, ident.channel, event.subject)
        except Exception as e:  # e.g. a signature template with a missing value
            self.app.notify(f"cannot send: {e}", severity="error")
            return
        files = self._attached_sizes(event.attachments)
        over = over_limit(ident.channel, out.source, sum(size for _, size in files))
        if over or self.app.setting("console", "confirm_send", False):
            where = f"{CHANNEL_NAME.get(ident.channel, ident.channel)} {one_line(ident.address, 40)}"
            big = "big" if files and ident.channel == "email" else "long"
            question = f"This reply is {big}: {over}. Send it anyway?" if over else f"Send this reply via {where}?"
            if not over:
                body = preview(out)
            elif big == "big":
                body = Text("\n".join(f"📎 {one_line(name, 50)}  {size / 1024 / 1024:.1f} MB" for name, size in files)
                            + "\nMany mail servers refuse mail this big; a link to the file is safer.", style="dim")
            else:
                body = Text(f"{out.source[:400]}…", style="dim")  # not 5 MB of widgets
            self.app.push_screen(ConfirmScreen(question, body),
                                 lambda yes: yes and self._queue(event, out))
        else:
            self._queue(event, out)

    @staticmethod
    def _attached_sizes(paths) -> list[tuple[str, int]]:
        """(file name, bytes) of each attachment, as the disk says now (a file gone
        meanwhile counts 0 here: queueing it then says it cannot be read)."""
        import os

        sizes = []
        for path in paths:
            try:
                sizes.append((os.path.basename(path), os.path.getsize(os.path.expanduser(path))))
            except OSError:
                sizes.append((os.path.basename(path), 0))
        return sizes

    def _queue(self, event: Composer.Send, out) -> None:
        agent, channel = self.app.agent, out.channel
        store_cap = self.app.setting("attachments", "max_bytes", None)

        def fn(s: Store):
            # read and checked here, in the worker: a big file never stalls the screen, and a
            # reply its channel would refuse is never queued (ValueError: the toast says why)
            files = []
            for path in event.attachments:
                try:
                    files.append(read_attachment(path))
                except OSError as e:
                    raise ValueError(f"cannot attach {path}: {e.strerror or e}") from None
                why = file_too_big(channel, files[-1].filename, len(files[-1].data), store_cap)
                if why:
                    raise ValueError(f"not sent: {why}")
            with s.tx():  # the draft goes with the reply it became
                mid = s.queue_reply(event.customer_id, out.source, agent, identity_id=event.identity_id,
                                    subject=out.subject or event.subject, attachments=files,
                                    meta={"cc": list(event.cc)} if event.cc and channel == "email" else None)
                s.delete_draft(agent, event.customer_id)
            return mid
        self.desk.write(fn, done=lambda mid: f"reply #{mid} queued",
                        then=lambda _: self._sent(event.customer_id, move_on=True), moves_on=True)

    def _sent(self, customer_id: int, move_on: bool = False) -> None:
        self.desk.drafts.forget(customer_id)
        composer = self.desk.composer
        if composer.customer is None or composer.customer.id != customer_id:
            composer.drafts.pop(customer_id, None)  # the agent moved on meanwhile: theirs stays
            return
        composer.clear()
        self.desk.live.presence_changed()  # the composer is empty: "viewing" again
        self.desk.live.wake_outbox()
        self.desk.timeline.focus()
        if move_on:  # a reply answers them: on to whoever waits next
            self.desk.move_on()

    def leave(self) -> None:
        desk = self.desk
        desk.timeline.focus() if desk.current is not None else desk.queue.focus()
        desk.live.presence_changed()

    # -- the external editor, attachments, Cc ------------------------------------------------
    def edit_externally(self) -> None:
        """The reply in $VISUAL / $EDITOR (the console steps aside meanwhile); what
        is saved comes back into the composer."""
        import os
        import shlex
        import subprocess
        import tempfile

        composer = self.desk.composer
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        fd, path = tempfile.mkstemp(prefix="omnidesk-reply-", suffix=".md")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(composer.area.text)
            try:
                with self.app.suspend():
                    done = subprocess.run([*shlex.split(editor), path])
            except Exception as e:  # no terminal to hand over (headless), or no such editor
                self.app.notify(f"cannot run the editor {editor!r}: {e}", severity="error")
                return
            if done.returncode != 0:
                self.app.notify(f"{editor} exited with status {done.returncode}: the text is unchanged",
                                severity="warning")
                return
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        composer.set_text(text.removesuffix("\n"))
        composer.area.focus()

    def pick_attachment(self) -> None:
        if self.desk.need_customer() is None:
            return
        composer = self.desk.composer
        channel = composer.channel
        store_cap = self.app.setting("attachments", "max_bytes", None)

        def check(text: str) -> str | None:
            import os

            path = os.path.expanduser(text.strip())
            if not os.path.isfile(path):
                return "no such file" if not os.path.exists(path) else "not a file"
            return file_too_big(channel, os.path.basename(path), os.path.getsize(path), store_cap)
        self.app.push_screen(PromptScreen(titled("Attach a file to the reply to", self.desk.current),
                                          placeholder="~/Downloads/invoice.pdf",
                                          help="→ completes the path · enter attaches · esc cancels",
                                          check=check, suggester=PathSuggester()),
                             lambda path: path and composer.add_attachment(str(Path(path.strip()).expanduser())))

    def ask_cc(self) -> None:
        if self.desk.need_customer() is None:
            return
        composer = self.desk.composer
        if composer.channel != "email":
            self.app.notify("Cc is for e-mail replies: switch the channel first (ctrl+o).", severity="warning")
            return

        from connectors.email.addresses import parse_list

        def addresses(text: str) -> list[str]:  # as RFC 5322 writes them: "Doe, John" <john@x.example>
            return [str(a) for a in parse_list(text)]

        def check(text: str) -> str | None:
            try:
                parse_list(text)
            except ValueError as e:
                return str(e)
            return None
        self.app.push_screen(PromptScreen(titled("Cc of the reply to", self.desk.current), value=", ".join(composer.cc),
                                          placeholder="Ann <ann@example.com>",
                                          help="addresses separated by commas, as a mail client writes them"
                                               " (Ann <ann@example.com>); empty removes the Cc", check=check),
                             lambda text: text is not None and composer.set_cc(addresses(text)))

    # -- the channel ---------------------------------------------------------------------
    def pick_channel(self) -> None:
        customer = self.desk.need_customer()
        if customer is None:
            return
        items = []
        for ident in customer.identities:
            t = Text(end="")
            t.append(f"{badge(ident.channel)} ", Style(color=color(ident.channel), bold=True))
            t.append(f"{CHANNEL_NAME.get(ident.channel, ident.channel)}  {one_line(ident.address, 50)}")
            if ident.handle:
                t.append(f"  @{one_line(ident.handle, 30)}", Style(dim=True))
            if ident.account:
                t.append(f"  via {one_line(ident.account, 20)}", Style(dim=True))
            items.append((t, ident.id))
        self.app.push_screen(PickerScreen(titled("Reply to", customer, " on which channel?"), items),
                             lambda iid: iid is not None and self._set_identity(iid))

    def _set_identity(self, identity_id: int) -> None:
        self.desk.composer.set_identity(identity_id)
        self.desk.composer.area.focus()

    # -- templates -------------------------------------------------------------------------
    def pick_template(self) -> None:
        if self.desk.need_customer() is None:
            return
        try:
            templates = list_templates(self.app.config)
        except Exception as e:  # a broken template file names itself
            self.app.notify(str(e), severity="error", timeout=8)
            return
        if not templates:
            self.app.notify("No templates yet (`omnidesk init` installs a starter set).", severity="warning")
            return
        items = []
        for t in templates:
            label = Text(t.name, style="bold", end="")
            if t.description:
                label.append(f"  {one_line(t.description, 60)}", Style(dim=True))
            items.append((label, t.name))
        self.app.push_screen(PickerScreen("Insert template", items, placeholder="fuzzy name"),
                             lambda name: name and self.insert_template(name))

    def insert_template(self, name: str, values: dict[str, str] | None = None) -> None:
        """Render template `name` for the customer in view; asks for values it lacks."""
        from connectors.desk.templates import MissingValues

        app = self.app
        cid = self.desk.current.id
        identity = self.desk.composer.identity
        channel = identity.channel if identity else "email"
        values = dict(values or {})
        # a reply already begun has its greeting ("Hi Bob, sure -"): the template goes in without its own
        begun = bool(self.desk.composer.area.text.strip())

        def render(s: Store):
            rendered = render_template(s, cid, name, channel, app.agent, app.config, values, greeting=not begun)
            # In an existing e-mail thread the subject stays "Re: <theirs>" so mail clients
            # keep threading (as `omnidesk reply --template` does); a template's own
            # subject only starts new conversations.
            in_thread = identity is not None and s.last_inbound(identity.id) is not None
            return rendered, None if in_thread else rendered.subject

        def failed(error: Exception) -> None:
            if isinstance(error, MissingValues):
                self._ask_values(name, list(error.missing), values)
            else:  # a template error names the template and the problem
                app.notify(str(error), severity="error", timeout=8)
        self.desk.reader.run(render, lambda result: self._template_ready(result, values), group="template",
                             failed=failed, hold_keys=True)  # keys typed meanwhile go to the prompt or the reply

    def _ask_values(self, name: str, missing: list[tuple[str, str]], values: dict[str, str]) -> None:
        key, label = missing[0]

        def answered(value):
            if value is None:  # esc: back where the agent was (the reply), and saying so,
                # so that the next key is not taken for a command (it is text there)
                composer = self.desk.composer
                who = one_line(composer.customer.name, 30) if composer.customer is not None else ""
                self.app.notify(f"{name} not inserted · still writing to {who or 'them'} · esc leaves the reply",
                                timeout=6)
                return
            values[key] = value
            if len(missing) > 1:
                self._ask_values(name, missing[1:], values)
            else:
                self.insert_template(name, values)
        self.app.push_screen(PromptScreen(f"{name}: {label or key}", placeholder=key,
                                          help=f"{len(missing)} value{'s' if len(missing) > 1 else ''} to fill"),
                             answered)

    def _template_ready(self, result, values: dict[str, str] | None = None) -> None:
        rendered, subject = result
        composer = self.desk.composer
        # the values as typed (no Markdown backslashes); the composer turns them back into
        # their Markdown for the preview and the send (Composer.markdown)
        composer.literals.update(rendered.literals)
        before, after = composer.insert_text(rendered.shown, subject)
        composer.template = InsertedTemplate(rendered.template or "", rendered.channel,
                                             rendered.shown.strip("\n"), dict(values or {}), before, after)
        if not composer.show_preview:
            composer.action_preview()

    # -- a channel switch with a template in the reply -----------------------------------
    def adapt_template(self) -> None:
        """The reply's template was rendered for another channel: put the current
        channel's version in its place. Untouched, it is swapped at once; edited,
        the agent chooses between the new version (their edits to it are lost) and
        their text as it is (then it is theirs, not the template's)."""
        composer = self.desk.composer
        old = composer.template
        if not composer.template_stale() or old is None:
            return
        channel, cid = composer.channel, composer.customer.id
        was, now = CHANNEL_NAME.get(old.channel, old.channel), CHANNEL_NAME.get(channel, channel)
        text = composer.area.text
        at = text.find(old.source)
        if at >= 0:
            self._rerender(old, channel, cid, (at, at + len(old.source)),
                           f"{old.name} rewritten for {now}: check the preview")
            return
        if text.startswith(old.before) and text.endswith(old.after) and len(old.before) + len(old.after) <= len(text):
            region, lost = (len(old.before), len(text) - len(old.after)), "your changes to it are lost"
        else:  # edited around it too: where it is cannot be told apart, so the whole reply goes
            region, lost = (0, len(text)), "the whole reply is replaced"
        question = (f"The {old.name} template in this reply was written for {was} and you edited it. "
                    f"Replace it with its {now} version? ({lost})")
        body = Text(f"n keeps your text as it is: it then goes to {now} exactly as the preview shows "
                    f"(with the {was} greeting and sign-off, if you kept them).", style="dim")

        def answered(yes: bool) -> None:
            if composer.template is not old:  # the reply changed meanwhile: ask again on send
                return
            if yes:
                self._rerender(old, channel, cid, region, f"{old.name} replaced by its {now} version")
            else:
                composer.template = None  # the agent's own text now
                self.app.notify(f"Kept as written: it goes to {now} as the preview shows.")
        self.app.push_screen(ConfirmScreen(question, body), answered)

    def _rerender(self, old: InsertedTemplate, channel: str, cid: int, region: tuple[int, int],
                  done: str) -> None:
        app = self.app

        identity = self.desk.composer.identity

        def render(s: Store):
            rendered = render_template(s, cid, old.name, channel, app.agent, app.config, old.values,
                                       greeting=not old.before.strip())  # as it went in: begun or not
            # as on insert: a template's own subject only starts a new e-mail conversation
            in_thread = identity is None or s.last_inbound(identity.id) is not None
            return rendered, None if in_thread else rendered.subject

        text = self.desk.composer.area.text  # the region is an offset into this text

        def ready(result) -> None:
            rendered, subject = result
            composer = self.desk.composer
            if (composer.template is not old or composer.customer is None or composer.customer.id != cid
                    or composer.channel != channel):
                return  # the reply moved on meanwhile (a new channel asks again)
            if composer.area.text != text:  # typed into meanwhile: the offsets no longer hold
                app.notify(f"The reply changed while {old.name} was being rewritten: switch the channel "
                           f"again (ctrl+o) or send; it is rewritten first.", severity="warning")
                return
            composer.literals.update(rendered.literals)
            new = InsertedTemplate(old.name, channel, rendered.shown.strip("\n"), dict(old.values),
                                   old.before, old.after)
            composer.replace_template(new, region)
            if subject and not composer.subject:
                composer.subject = subject
                composer.refresh_bar()
            app.notify(done)

        def failed(error: Exception) -> None:
            app.notify(f"cannot rewrite {old.name} for {channel}: {error}", severity="error", timeout=8)
        self.desk.reader.run(render, ready, group="template", failed=failed)
