"""A real Dovecot IMAP server on 127.0.0.1 for tests and benchmarks.

Facts this relies on (Dovecot 2.3): `ssl = no` plus `disable_plaintext_auth =
no` allows LOGIN on loopback; unix socket paths must stay under ~100
characters, so everything lives in a short /tmp directory, not pytest's deep
tmp_path; the mail user cannot be uid 0 (we use `nobody` when running as root).
Mail is delivered the way a real MTA's result looks to a client: IMAP APPEND.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
  # IDLE's "* OK Still here" (2 min by default, aligned to the clock) wakes a client that
  # missed an announcement: rarely, so no test passes on a lucky keepalive
  imap_idle_notify_interval = 10 mins
}}
"""


class Dovecot:
    """One Dovecot instance with users; start/stop/restart keep the port and mail."""

    def __init__(self, users: dict[str, str], tls: bool = False):
        if not os.path.exists(DOVECOT):
            raise FileNotFoundError(DOVECOT)
        self.users = dict(users)
        self.root = Path(tempfile.mkdtemp(prefix="odv", dir="/tmp"))  # short: socket paths < 100 chars
        self.port = free_port()
        self.tls_port = free_port() if tls else 0  # implicit TLS; the plain port then offers STARTTLS
        self.cert = None
        ssl = "ssl = no"
        if tls:
            self.cert, key = make_certificate(self.root)
            ssl = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{key}"
        self.proc: subprocess.Popen | None = None
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            internal, login = "dovecot", "dovenull"
            try:
                pwd.getpwnam(internal), pwd.getpwnam(login)
            except KeyError:
                internal = login = "nobody"
        else:
            mail_user = pwd.getpwuid(os.getuid())
            internal = login = mail_user.pw_name
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        os.chmod(self.root, 0o755)
        (self.root / "mail").mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(self.root / "mail", self.uid, self.gid)
        group = "nogroup" if internal == "nobody" else internal
        (self.root / "dovecot.conf").write_text(CONFIG.format(
            root=self.root, port=self.port, tls_port=self.tls_port, ssl=ssl, uid=self.uid, gid=self.gid, internal_user=internal,
            internal_group=group, login_user=login))
        self._write_passwd()

    def _write_passwd(self) -> None:
        lines = [f"{u}:{{PLAIN}}{p}::::::" for u, p in self.users.items()]
        path = self.root / "passwd"
        path.write_text("\n".join(lines) + "\n")
        os.chmod(path, 0o644)

    @property
    def log(self) -> str:
        p = self.root / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self) -> None:
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError("dovecot did not start:\n" + self.log[-3000:]) from None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the master and its children
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None
        deadline = time.monotonic() + 5  # the listener closes with the master
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                break

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers for tests ---------------------------------------------------------
    def client(self, user: str):
        from imapclient import IMAPClient

        c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        c.login(user, self.users[user])
        return c

    def deliver(self, user: str, raw: bytes | list[bytes], folder: str = "INBOX", arrived=None) -> None:
        """Put mail into a mailbox, as the user's MTA would have (`arrived`: its
        INTERNALDATE, a datetime, for mail that has been there a while)."""
        c = self.client(user)
        try:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for one in ([raw] if isinstance(raw, bytes) else raw):
                c.append(folder, one, msg_time=arrived)
        finally:
            c.logout()

    def options(self, user: str, **extra) -> dict:
        """A validated [email.<account>] table pointing at this server."""
        from connectors.config import validate_table
        from connectors.email import OPTIONS

        env = f"OMNIDESK_TEST_PW_{user.upper()}"
        os.environ[env] = self.users[user]
        table = {"imap_host": "127.0.0.1", "imap_port": self.port, "imap_security": "plain",
                 "username": user, "password_env": env, "from_address": f"{user}@shop.test", **extra}
        return validate_table(f"email.{user}", OPTIONS, table)


def require(path_or_command: str, package: str) -> None:
    """Skip a test whose real server or tool is missing, except in CI, where that is a failure."""
    if os.path.exists(path_or_command) or shutil.which(path_or_command):
        return
    if os.environ.get("CI") or os.environ.get("OMNIDESK_CI"):
        pytest.fail(f"{path_or_command} is not installed; .ci/run must install the Debian package {package}")
    pytest.skip(f"{path_or_command} is not installed here (apt-get install {package})")


@pytest.fixture
def dovecot():
    require(DOVECOT, "dovecot-imapd")
    server = Dovecot({"support": "s3cret-pw", "other": "other-pw"})
    server.start()
    yield server
    server.cleanup()
