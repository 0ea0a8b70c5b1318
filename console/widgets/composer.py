"""The composer: reply (or note) to the selected customer on any of their channels."""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static, TextArea

from console import keymap
from console.later import Debounce
from console.widgets.badges import CHANNEL_NAME, badge, color
from console.widgets.outgoing import preview
from console.widgets.safe_text import one_line
from store.drafts import Draft
from store.models import Customer, Identity


@dataclass
class InsertedTemplate:
    """A template put into the reply: rendered for `channel` as `source`. Each
    channel has its own adaptation (e-mail's greeting and sign-off, chat's short
    form), so a channel switch re-renders it: never another channel's version sent."""
    name: str
    channel: str
    source: str  # as shown in the composer: values as typed
    values: dict[str, str] = field(default_factory=dict)
    before: str = ""  # the reply's text around it when it went in: where it is after edits
    after: str = ""


class ReplyArea(TextArea):
    """The text being written. Markdown; formatted per channel on send."""

    DEFAULT_CSS = """
    ReplyArea { border: none; padding: 0 1; height: 1fr; }
    ReplyArea:focus { border: none; }
    """

    def on_resize(self) -> None:
        # Textual re-wraps the text for the new width but, unfocused, kept showing the lines
        # as wrapped for the old one (words cut off at 80 columns until focused): draw again
        self.refresh()

    def _recompute_cursor_offset(self) -> None:
        # Undoing an edit that added lines (a template, a paste) shortens the document
        # before the cursor is moved back, and the scrollbar hiding meanwhile asks where
        # that cursor is on screen: Textual raised ValueError (line out of bounds) and the
        # console died. The location is clamped for that look-up only; the undo then puts
        # the cursor where it was (Textualize/textual#6686, fix proposed in #6687).
        self._cursor_offset = self.wrapped_document.location_to_offset(self.clamp_visitable(self.cursor_location))

    def action_undo(self) -> None:
        # ctrl+z right after "discard draft" brings the whole draft back (channel, Cc, files too)
        composer = next((a for a in self.ancestors if isinstance(a, Composer)), None)
        if composer is None or not composer.restore_discarded():
            super().action_undo()


class Composer(Vertical):
    BINDINGS = keymap.bindings("composer")

    class Send(Message):
        """Send (or add as a note) `text`; `attachments` are local file paths, `cc` e-mail addresses."""

        def __init__(self, customer_id: int, text: str, identity_id: int | None, mode: str, subject: str | None,
                     attachments: tuple[str, ...] = (), cc: tuple[str, ...] = ()) -> None:
            super().__init__()
            self.customer_id = customer_id
            self.text = text
            self.identity_id = identity_id
            self.mode = mode
            self.subject = subject
            self.attachments = attachments
            self.cc = cc

    class EditExternally(Message):
        """The agent wants to write the reply in $VISUAL / $EDITOR."""

    class PickAttachment(Message):
        """The agent wants to attach a file."""

    class AskCc(Message):
        """The agent wants to set who gets a copy (e-mail)."""

    class PickChannel(Message):
        """The agent wants to choose the channel to reply on."""

    class PickTemplate(Message):
        """The agent wants a template inserted at the cursor."""

    class ChannelChanged(Message):
        """The reply's channel changed while it holds a template rendered for another one."""

    class Discarded(Message):
        """The agent threw the draft to `customer_id` away: the store forgets it now."""

        def __init__(self, customer_id: int, name: str) -> None:
            super().__init__()
            self.customer_id = customer_id
            self.name = name

    class Leave(Message):
        """The agent is done with the composer for now (the draft stays)."""

    class Typing(Message):
        """The text changed (presence: this agent is replying)."""

    class Edited(Message):
        """The draft to `customer_id` changed (text, channel, attachments, Cc, note or reply): keep it."""

        def __init__(self, customer_id: int) -> None:
            super().__init__()
            self.customer_id = customer_id

    def __init__(self, cursor_blink: bool = True, outgoing=None, **kw):
        """`outgoing(customer_id, text, channel, subject)` renders the preview."""
        super().__init__(**kw)
        self.outgoing = outgoing
        self.customer: Customer | None = None
        self.identity: Identity | None = None
        self.mode = "reply"
        self.subject: str | None = None
        self.show_preview = False
        self._cursor_blink = cursor_blink
        self._preview_soon = Debounce(self, 0.12, self.update_preview)  # (not set_timer: may never fire under load)
        self._chosen = False  # the agent picked the channel: a refresh must not change it
        # the drafts to customers not in view, so moving through the queue never loses one
        # (the store keeps them too: console/drafts.py); customer id -> Draft
        self.drafts: dict[int, Draft] = {}
        self.attachments: list[str] = []  # local files going with the reply
        self.cc: list[str] = []  # e-mail copy-to addresses
        self.template: InsertedTemplate | None = None  # the template in the reply, if any
        self.draft_templates: dict[int, InsertedTemplate] = {}
        # values typed into template prompts, shown as typed -> the Markdown they stand for
        # ("*urgent*" -> "\\*urgent\\*"): sent as typed, never read as markup
        self.literals: dict[str, str] = {}
        # the draft just discarded, with its template: ctrl+z in the empty reply brings it back
        self._discarded: tuple[Draft, InsertedTemplate | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="composer-bar")
        with Horizontal(id="composer-body"):
            area = ReplyArea(id="reply-text", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
            area.cursor_blink = self._cursor_blink
            yield area
            with VerticalScroll(id="preview-pane"):
                yield Static("", id="preview")
        yield Static("", id="composer-keys")  # while writing: every key the composer has

    @property
    def area(self) -> ReplyArea:
        return self.query_one(ReplyArea)

    @property
    def closing(self) -> bool:
        """The console is closing: the text area is gone (what was typed cannot be read)."""
        return not self.query(ReplyArea)

    @property
    def channel(self) -> str:
        return self.identity.channel if self.identity else ""

    # -- state -----------------------------------------------------------------
    def set_customer(self, customer: Customer | None, identity_id: int | None) -> None:
        """Show `customer` (again). `identity_id`: the channel to answer on unless
        the agent picked one (their newest message's, usually)."""
        changed = customer is None or self.customer is None or customer.id != self.customer.id
        before = self.channel
        if changed:
            self._keep_draft()
        self.customer = customer
        draft = self.drafts.pop(customer.id, None) if changed and customer is not None else None
        if changed:
            self._chosen = draft is not None and draft.identity_id is not None
        if customer is None:
            self.identity = None
        elif (changed or not self._chosen or self.identity is None
              or self.identity.id not in {i.id for i in customer.identities}):
            wanted = draft.identity_id if draft and draft.identity_id is not None else identity_id
            self.identity = next((i for i in customer.identities if i.id == wanted),
                                 customer.identities[0] if customer.identities else None)
        if changed:
            self._show_draft(draft or Draft(customer.id if customer else 0, ""),
                             self.draft_templates.pop(customer.id, None) if customer else None)
            self._discarded = None  # its ctrl+z was for the customer left
        self.refresh_bar()
        self.update_preview()
        self._check_template(before)

    def _show_draft(self, draft: Draft, template: InsertedTemplate | None) -> None:
        """The reply as `draft` holds it: note or reply, subject, files, Cc, template values
        and text; a draft reopened goes on where it ended (typing lands after the text)."""
        if self.mode != draft.mode:
            self.mode = draft.mode
            self.set_class(draft.mode == "note", "-note")
        self.subject = draft.subject
        self.attachments, self.cc, self.literals = list(draft.attachments), list(draft.cc), dict(draft.literals)
        self.template = template
        if self.area.text != draft.text:
            self.area.text = draft.text
            self.area.move_cursor(self.area.document.end)

    def _keep_draft(self) -> None:
        draft = self.draft_for(self.customer.id) if self.customer is not None else None
        if draft is not None:
            self.drafts[draft.customer_id] = draft
            if self.template is not None:
                self.draft_templates[draft.customer_id] = self.template

    def draft_for(self, customer_id: int) -> Draft | None:
        """The unsent draft to `customer_id` (in view or kept), None if there is none."""
        if self.customer is None or self.customer.id != customer_id:
            return self.drafts.get(customer_id)
        if self.closing:
            return None
        text = self.area.text
        if not text.strip() and not self.attachments:
            return None
        return Draft(customer_id, text, self.mode, self.subject,
                     self.identity.id if self._chosen and self.identity else None,
                     list(self.attachments), list(self.cc), dict(self.literals))

    def load_drafts(self, drafts: list[Draft]) -> None:
        """Drafts kept from an earlier session (the one in view, if any, stays as it is)."""
        for d in drafts:
            if self.customer is None or d.customer_id != self.customer.id:
                self.drafts.setdefault(d.customer_id, d)

    def draft_customers(self) -> set[int]:
        """Customers with unsent text: kept drafts and the one being written to."""
        ids = set(self.drafts)
        if self.customer is not None and self.draft_for(self.customer.id) is not None:
            ids.add(self.customer.id)
        return ids

    def _edited(self) -> None:
        if self.customer is not None:
            self.post_message(self.Edited(self.customer.id))

    def set_identity(self, identity_id: int) -> None:
        before = self.channel
        if self.customer:
            self.identity = next((i for i in self.customer.identities if i.id == identity_id), self.identity)
            self._chosen = True
        self.refresh_bar()
        self.update_preview()
        self._check_template(before)
        self._edited()

    def template_stale(self) -> bool:
        """The reply holds a template rendered for another channel than the current one."""
        return (self.template is not None and self.mode == "reply" and bool(self.channel)
                and self.template.channel != self.channel)

    def _check_template(self, before: str) -> None:
        if self.channel != before and self.template_stale():
            self.post_message(self.ChannelChanged())

    def insert_text(self, text: str, subject: str | None = None) -> tuple[str, str]:
        """Put `text` at the cursor on lines of its own (never glued to what is
        there); `subject` replaces the subject when given. Returns the reply's
        text before and after what went in."""
        area = self.area
        row, column = area.cursor_location
        line = area.document.get_line(row)
        before = "\n" if line[:column].strip() else ""
        after = "\n" if line[column:].strip() else ""
        start = area.document.get_index_from_location((row, column))
        area.insert(before + text.strip("\n") + after)
        end = area.document.get_index_from_location(area.cursor_location)
        if subject:
            self.subject = subject
        area.focus()
        self.update_preview()
        full = area.text
        return full[:start] + before, after + full[end:]

    def replace_template(self, new: InsertedTemplate, region: tuple[int, int]) -> None:
        """Put `new` where the old template's text is (`region`: start, end offsets)."""
        start, end = region
        document = self.area.document  # an edit, not a new text: ctrl+z brings the old version back
        self.area.replace(new.source, document.get_location_from_index(start), document.get_location_from_index(end))
        self.area.move_cursor(self.area.document.get_location_from_index(start + len(new.source)))
        self.template = new
        self.update_preview()

    def markdown(self) -> str:
        """The reply as Markdown, what is previewed and sent: the text, with each template
        value still there as typed turned into its Markdown (it stays literal)."""
        text = self.area.text
        if not self.literals:
            return text
        from connectors.desk.templates import to_markdown

        return to_markdown(text, self.literals)

    def clear(self) -> None:
        self.area.text = ""
        self.template = None
        self.literals = {}
        self.subject = None
        self.attachments, self.cc = [], []
        self.refresh_bar()
        self.update_preview()
        self._edited()

    def discard_draft(self) -> None:
        """Throw the draft to the customer in view away (text, attachments, Cc): asked
        nothing, as in Front or Gmail, and ctrl+z in the empty reply brings it back."""
        if self.customer is None:
            self.app.notify("Select a customer first.", severity="warning")
            return
        name = one_line(self.customer.name, 30) or f"#{self.customer.id}"
        draft = self.draft_for(self.customer.id)
        if draft is None:
            self.app.notify(f"No draft to {name} to discard.", severity="warning")
            return
        self._discarded = (draft, self.template)
        self.clear()
        self.post_message(self.Discarded(self.customer.id, name))

    def restore_discarded(self) -> bool:
        """Put the draft just discarded back, if the reply is still empty; True if it did."""
        if self._discarded is None or self.customer is None or self.area.text:
            return False
        draft, template = self._discarded
        self._discarded = None
        if draft.customer_id != self.customer.id:
            return False
        self._show_draft(draft, template)
        self.refresh_bar()
        self.update_preview()
        self._edited()
        self.app.notify(f"Draft to {one_line(self.customer.name, 30) or '#' + str(self.customer.id)} is back.")
        return True

    def add_attachment(self, path: str) -> None:
        if path not in self.attachments:
            self.attachments.append(path)
        self.refresh_bar()
        self._edited()

    def set_cc(self, addresses: list[str]) -> None:
        self.cc = list(addresses)
        self.refresh_bar()
        self._edited()

    def set_text(self, text: str) -> None:
        """Replace the whole text (it came back from the external editor)."""
        self.area.replace(text, (0, 0), self.area.document.end)  # an edit: ctrl+z brings the old text back
        self.area.move_cursor(self.area.document.end)
        self.update_preview()

    # the reply area looks the same focused or not: say it in words (a key typed into it
    # is text, not a command), and say how to start writing when it is not focused
    def on_descendant_focus(self) -> None:
        self.refresh_bar()

    def on_descendant_blur(self) -> None:
        self.refresh_bar()

    def _writing(self) -> bool:
        return self.is_mounted and self.app.focused is not None and self.app.focused in self.query(ReplyArea)

    def _refresh_placeholder(self) -> None:
        area = self.area
        if self.customer is None or self._writing():
            area.placeholder = ""
            return
        km = getattr(self.app, "keymap", None) or {}
        keys = [f"{keymap.display(km[i].split(',')[0])} {what}" for i, what in (("global.reply", "reply"),
                                                                              ("global.note", "note")) if km.get(i)]
        area.placeholder = " · ".join(keys) + f" to {one_line(self.customer.name or 'this customer', 30)}"

    def refresh_bar(self) -> None:
        bar = self.query_one("#composer-bar", Static)
        t = Text(end="", no_wrap=True, overflow="ellipsis")
        writing = self.customer is not None and self._writing()
        self._refresh_placeholder()
        if self.customer is None:
            t.append("No customer selected", "dim italic")
        elif self.mode == "note":
            if writing:
                t.append("✎ writing", Style(bold=True, reverse=True))
                t.append(" ")
            t.append(" note ", Style(bold=True, color="black", bgcolor="#d19a66"))
            t.append("  internal, never sent to the customer", "dim")
        elif self.identity is None:
            t.append("This customer has no channel to reply on", "red")
        else:
            i = self.identity
            if writing:  # (a word, not only a colour: 80 columns over SSH may have few colours)
                t.append("✎ writing", Style(bold=True, reverse=True))
                t.append(" via ", "dim")
            else:
                t.append("reply via ", "dim")
            t.append(f" {badge(i.channel)} ", Style(bold=True, color="black", bgcolor=color(i.channel)))
            who = i.address if i.channel == "email" else (f"@{i.handle}" if i.handle else i.display_name or i.address)
            t.append(f" {CHANNEL_NAME.get(i.channel, i.channel)} ")
            more = Text(" ▾", "dim", end="") if len(self.customer.identities) > 1 else Text(end="")
            width = bar.size.width - 2 if bar.size.width > 2 else 0
            address = Text(one_line(who, 40), end="", no_wrap=True, overflow="ellipsis")
            if self.cc and i.channel == "email":  # never cut off: in names ("cc Bill") if it must be short
                room = width - t.cell_len - address.cell_len - more.cell_len - len(" · cc ") if width else 0
                cc = Text(f" · cc {self._cc_label(max(room, 12))}", "bold", end="")
                if width and t.cell_len + address.cell_len + more.cell_len + cc.cell_len > width:
                    address.truncate(max(8, width - t.cell_len - more.cell_len - cc.cell_len), overflow="ellipsis")
                more.append_text(cc)
            if self.subject and i.channel == "email":  # after the Cc: when space is short, it is what is cut
                more.append(f" · {one_line(self.subject, 40)}", "dim")
            t.append_text(address)
            t.append_text(more)
        if self.attachments and self.mode == "reply":
            from pathlib import Path

            names = [one_line(Path(p).name, 30) for p in self.attachments]
            t.append(" · 📎 " + names[0] + (f" +{len(names) - 1}" if len(names) > 1 else ""), "bold")
        bar.update(t, layout=False)
        self.refresh_keys()

    def _cc_label(self, room: int) -> str:
        """The Cc in `room` cells: whole when it fits, else its names ("Bill, Ann"), else
        the first name and how many more ("Bill +2")."""
        if not self.cc:
            return ""
        from connectors.email.addresses import short_name

        whole = one_line(", ".join(self.cc), 200)
        if room <= 0 or len(whole) <= room:
            return whole
        names = [one_line(short_name(a), 30) for a in self.cc]
        if len(", ".join(names)) <= room or len(names) == 1:
            return ", ".join(names)
        return f"{names[0]} +{len(names) - 1}"

    def key_hints(self) -> list[tuple[str, str]]:
        """(key as shown, what it does) for the composer's keys that apply now:
        Cc only on e-mail, none of the sending ones while writing a note."""
        km = getattr(self.app, "keymap", None) or {}
        if self.mode == "note":
            wanted = [("composer.send", "add note"), ("composer.note_mode", "reply"), ("composer.edit", "editor"),
                      ("composer.discard", "discard"), ("composer.leave", "leave")]
        else:
            wanted = [("composer.send", "send"), ("composer.switch_channel", "channel"),
                      ("composer.template", "template"), ("composer.preview", "preview"),
                      ("composer.note_mode", "note"), ("composer.edit", "editor"), ("composer.attach", "attach")]
            if self.channel == "email":
                wanted.append(("composer.cc", "cc"))
            wanted += [("composer.discard", "discard"), ("composer.leave", "leave")]
        return [(keymap.display(km[i].split(",")[0]), label) for i, label in wanted if km.get(i)]

    def refresh_keys(self) -> None:
        """The hints, on as many lines as the width needs (two at 80 columns), never
        cut and never split between a key and its word."""
        width = max(20, self.size.width - 2) if self.size.width else 118
        lines: list[Text] = [Text(end="", no_wrap=True)]
        for key, label in self.key_hints():
            item = Text(end="", no_wrap=True)
            item.append(key, "bold")
            item.append(f" {label}", "dim")
            line = lines[-1]
            if line.cell_len and line.cell_len + 2 + item.cell_len > width:
                line = Text(end="", no_wrap=True)
                lines.append(line)
            if line.cell_len:
                line.append("  ")
            line.append_text(item)
        self.query_one("#composer-keys", Static).update(Text("\n").join(lines))

    def on_resize(self) -> None:
        self.refresh_bar()  # (and the key hints): the Cc and the address share the new width

    def update_preview(self) -> None:
        panes = self.query("#preview-pane")
        if not panes:  # a late call while the console closes: the panes are gone
            return
        pane = panes.first()
        pane.display = self.show_preview
        self.set_class(self.show_preview, "-preview")
        if not self.show_preview:
            return
        target = self.query_one("#preview", Static)
        if self.mode == "note":
            target.update(Text("Notes stay here and are never sent.", style="dim italic"))
            return
        if self.customer is None or self.identity is None:
            target.update(preview(None))
            return
        try:
            if self.outgoing is None:
                raise RuntimeError("no preview without a store")
            out = self.outgoing(self.customer.id, self.markdown(), self.channel, self.subject)
        except Exception as e:  # a formatting problem is shown, never fatal
            target.update(preview(None, f"{type(e).__name__}: {e}"))
            return
        target.update(preview(out))

    # -- events ------------------------------------------------------------------
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.post_message(self.Typing())
        self._edited()
        if self.show_preview:
            self._preview_soon.poke()

    # -- actions -----------------------------------------------------------------
    def action_send(self) -> None:
        if self.customer is None:
            self.app.notify("Select a customer first.", severity="warning")
            return
        text = self.area.text
        if not text.strip():
            self.app.notify("Nothing to send: write something first.", severity="warning")
            return
        # a note is kept as written (shown as is, never formatted); a reply goes as Markdown
        self.post_message(self.Send(self.customer.id, self.markdown() if self.mode == "reply" else text,
                                    self.identity.id if self.identity else None,
                                    self.mode, self.subject, tuple(self.attachments), tuple(self.cc)))

    def action_edit_externally(self) -> None:
        self.post_message(self.EditExternally())

    def action_attach(self) -> None:
        self.post_message(self.PickAttachment())

    def action_cc(self) -> None:
        self.post_message(self.AskCc())

    def action_switch_channel(self) -> None:
        self.post_message(self.PickChannel())

    def action_template(self) -> None:
        self.post_message(self.PickTemplate())

    def action_preview(self) -> None:
        self.show_preview = not self.show_preview
        self.update_preview()

    def action_note_mode(self) -> None:
        self.mode = "note" if self.mode == "reply" else "reply"
        self.set_class(self.mode == "note", "-note")
        self.refresh_bar()
        self.update_preview()
        self._edited()

    def action_discard_draft(self) -> None:
        self.discard_draft()

    def action_leave(self) -> None:
        self.post_message(self.Leave())
