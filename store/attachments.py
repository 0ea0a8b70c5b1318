"""Attachment files: content on disk by SHA-256, names made safe, sizes capped."""
from __future__ import annotations

import hashlib
import os
import threading
import re
import unicodedata
from pathlib import Path

from store.db import Access
from store.models import AttachmentIn

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def sanitize_filename(name: str | None, fallback: str = "attachment") -> str:
    """A name that is safe to create in any directory: no path parts, no
    control or bidi characters, no leading dots, not reserved, not too long."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # controls, bidi overrides
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    if not name or name.split(".", 1)[0].lower() in _RESERVED:
        name = f"{fallback}{'_' + name if name else ''}"
    if len(name.encode("utf-8")) > 200:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        keep = name if not ext else stem
        while len((keep + ("." + ext if ext else "")).encode("utf-8")) > 200:
            keep = keep[:-1]
        name = keep + ("." + ext if ext else "")
    return name


class AttachmentStore:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, access: Access | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.access = access or Access()  # private (0700/0600) unless the store is shared with a group

    def put(self, item: AttachmentIn) -> tuple[str, int, str | None]:
        """Store the content; return (sha256, size, relative path or None if over the cap)."""
        if item.path is not None:
            return self._put_file(Path(item.path))
        if item.data is None:  # the connector skipped the download: record what it was
            return "", item.size or 0, None
        data = item.data
        digest = hashlib.sha256(data).hexdigest()
        if len(data) > self.max_bytes:
            return digest, len(data), None
        rel = f"{digest[:2]}/{digest}"
        path = self.root / rel
        if not path.exists():
            self.access.mkdirs(path.parent)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # writers may race
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, self.access.file_mode)
            os.fchmod(fd, self.access.file_mode)  # ours: the umask would drop the group's bits
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return digest, len(data), rel

    def _put_file(self, src: Path) -> tuple[str, int, str | None]:
        """A spooled file: hashed in chunks, then moved into place (never read whole).
        The file is gone afterwards, kept or not."""
        digest, size = hashlib.sha256(), 0
        try:
            with open(src, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError:
            return "", 0, None
        sha = digest.hexdigest()
        if size > self.max_bytes:
            src.unlink(missing_ok=True)
            return sha, size, None
        rel = f"{sha[:2]}/{sha}"
        path = self.root / rel
        if path.exists():
            src.unlink(missing_ok=True)
        else:
            self.access.mkdirs(path.parent)
            os.chmod(src, self.access.file_mode)  # our spooled file
            os.replace(src, path)  # spooled under the same root: a rename, no copy
        return sha, size, rel

    def spool_dir(self) -> Path:
        """Where large attachments are written while a message is parsed (same file system)."""
        d = self.root / "spool"
        self.access.mkdirs(d)
        return d

    def path(self, rel: str) -> Path:
        """The absolute path of a stored file from its relative name (as the attachments table keeps it)."""
        return self.root / rel
