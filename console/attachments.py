"""Attachments out of the store: save them to a folder, or open one with the
configured command. Names are sanitized (customers choose them) and never
overwrite a file already there; the copying runs in a worker."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from console.screens.pickers import PickerScreen
from store.attachments import sanitize_filename
from store.models import Message

if TYPE_CHECKING:
    from console.desk import DeskScreen


class Attachments:
    def __init__(self, desk: "DeskScreen"):
        self.desk = desk
        self.app = desk.app

    def _kept(self, message: Message | None) -> list:
        if message is None or not message.attachments:
            self.app.notify("This message has no attachments.", severity="warning")
            return []
        kept = [a for a in message.attachments if a.path]
        if not kept:
            self.app.notify("The attachment was over the size limit and was not kept.", severity="warning")
        return kept

    def save(self, message: Message | None) -> None:
        """Copy every kept attachment of `message` into [attachments] save_dir."""
        kept = self._kept(message)
        if kept:
            self.app.run_worker(lambda: self._save(kept), thread=True, group="files", exit_on_error=False)

    def open(self, message: Message | None) -> None:
        """Open one attachment of `message` (asks which when there are several)."""
        kept = self._kept(message)
        if len(kept) == 1:
            self._open_one(kept[0])
        elif kept:
            self.app.push_screen(PickerScreen("Open which attachment?", [(a.filename, a) for a in kept]),
                                 lambda a: a and self._open_one(a))

    def _open_one(self, att) -> None:
        self.app.run_worker(lambda: self._open(att), thread=True, group="files", exit_on_error=False)

    # -- in the worker -----------------------------------------------------------------
    def _save_dir(self) -> Path:
        return Path(os.path.expanduser(self.app.setting("attachments", "save_dir", "~/Downloads")))

    def _copy_out(self, att) -> Path:
        folder = self._save_dir()
        folder.mkdir(parents=True, exist_ok=True)
        name = sanitize_filename(att.filename)
        target = folder / name
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        n = 1
        while target.exists():
            target = folder / (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
            n += 1
        shutil.copyfile(att.path, target)
        return target

    def _save(self, attachments) -> None:
        app = self.app
        try:
            paths = [self._copy_out(a) for a in attachments]
        except OSError as e:
            app.from_thread(app.notify, f"could not save: {e.strerror or e}", severity="error")
            return
        app.from_thread(app.notify, "saved " + ", ".join(str(p) for p in paths), title="Attachments")

    def _open(self, att) -> None:
        app = self.app
        command = app.setting("attachments", "open_command", "xdg-open")
        try:
            path = self._copy_out(att)
            subprocess.Popen([*shlex.split(command), str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as e:
            app.from_thread(app.notify, f"could not open with {command!r}: {e}", severity="error")
            return
        app.from_thread(app.notify, f"opened {path.name} with {command}")
