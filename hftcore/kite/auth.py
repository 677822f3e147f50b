"""Kite login, the access-token file, and keeping secrets out of every output.

The flow (``hftcore login``): open ``login_url(api_key)`` in a browser, log in,
copy the ``request_token`` from the redirect URL; ``exchange_request_token``
sends ``checksum = sha256(api_key + request_token + api_secret)`` to
``POST /session/token`` and stores the access token in a file only the user can
read (mode 0600, in a 0700 folder).  The token expires at the next 06:00 IST.

Credentials come from the environment (``KITE_API_KEY``, ``KITE_API_SECRET``,
``KITE_ACCESS_TOKEN``) or that file; ``install_redaction`` makes every log
record (message, arguments and traceback) show ``***`` instead of them, and
``redact(text)`` does the same for anything else written out.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import traceback
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..feeds import IST

logger = logging.getLogger(__name__)

LOGIN_URL = "https://kite.zerodha.com/connect/login"
EXPIRY_TIME = dt.time(6, 0)
DEFAULT_TOKEN_FILE = (Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
                      / "hftcore" / "kite_token.json")
ENV_KEY, ENV_SECRET, ENV_TOKEN = "KITE_API_KEY", "KITE_API_SECRET", "KITE_ACCESS_TOKEN"
MASK = "***"


# ---------------------------------------------------------------- redaction

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_installed = False


def add_secret(*values) -> None:
    """Register values (keys, secrets, tokens) to mask everywhere from now on."""
    with _secrets_lock:
        for v in values:
            if isinstance(v, str) and len(v) >= 6:        # too short to mask safely
                _secrets.add(v)


def redact(text) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    s = str(text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for v in secrets:
        if v in s:
            s = s.replace(v, MASK)
    return s


def redact_obj(obj):
    """A JSON-like structure with every string redacted (snapshots, reports)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def install_redaction(*values) -> None:
    """Register ``values`` and make every log record redacted at creation.

    A record factory (not a handler filter) so it holds for every logger and
    every handler, including handlers added later: the message is formatted with
    its arguments, masked, and any traceback is formatted and masked too.
    """
    global _installed
    add_secret(*values)
    with _secrets_lock:
        if _installed:
            return
        _installed = True
    base = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        if not _secrets:
            return record
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep the raw parts
            msg = f"{record.msg} {record.args}"
        record.msg, record.args = redact(msg), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record
    logging.setLogRecordFactory(factory)


# ---------------------------------------------------------------- the token file

def login_url(api_key: str) -> str:
    """Where the user logs in; Kite redirects to the app's URL with a request_token."""
    return f"{LOGIN_URL}?v=3&api_key={urllib.parse.quote(api_key)}"


def parse_request_token(text: str) -> str:
    """The request_token from the redirect URL, or ``text`` itself if it is the token.
    ValueError for a redirect that reports a failed login or carries no token."""
    text = text.strip()
    if "://" in text or "?" in text or "request_token=" in text:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query or text.split("?")[-1])
        if q.get("status", ["success"])[0] != "success":
            raise ValueError("the redirect says the login failed")
        tok = q.get("request_token", [""])[0]
        if not tok:
            raise ValueError("no request_token in the redirect URL")
        return tok
    if not text.isalnum():
        raise ValueError("a request token is alphanumeric")
    return text


def token_expiry(login_time: dt.datetime) -> dt.datetime:
    """The 06:00 IST after ``login_time`` (naive times are IST): when the token dies."""
    t = login_time if login_time.tzinfo else login_time.replace(tzinfo=IST)
    t = t.astimezone(IST)
    expiry = dt.datetime.combine(t.date(), EXPIRY_TIME, IST)
    return expiry if t < expiry else expiry + dt.timedelta(days=1)


@dataclass
class Credentials:
    """What a live session needs; ``repr`` never shows the secret or the token."""
    api_key: str = ""
    api_secret: str = ""
    access_token: str = ""
    user_id: str = ""
    expires_at: dt.datetime | None = None
    source: str = ""                    # "env", a file path, or "env+file"

    def __repr__(self) -> str:
        return (f"Credentials(api_key={MASK if self.api_key else ''!r}, "
                f"api_secret={MASK if self.api_secret else ''!r}, "
                f"access_token={MASK if self.access_token else ''!r}, "
                f"user_id={self.user_id!r}, expires_at={self.expires_at}, "
                f"source={self.source!r})")

    __str__ = __repr__

    def expired(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.timezone.utc)
        return self.expires_at is not None and now >= self.expires_at

    def require_token(self, now: dt.datetime | None = None) -> None:
        """ValueError (safe to print) unless a key and an unexpired token are present."""
        if not self.api_key:
            raise ValueError(f"no Kite API key: set {ENV_KEY} or run `hftcore login`")
        if not self.access_token:
            raise ValueError(f"no Kite access token: run `hftcore login` (or set {ENV_TOKEN})")
        if self.expired(now):
            when = (f" at {self.expires_at.astimezone(IST):%Y-%m-%d %H:%M} IST"
                    if self.expires_at is not None else "")
            raise ValueError(f"the Kite access token expired{when}: run `hftcore login` again")


def save_token(path, api_key: str, access_token: str, user_id: str = "",
               login_time: dt.datetime | None = None) -> Path:
    """Write the token file readable only by the user (0600; its folder 0700)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    login_time = login_time or dt.datetime.now(IST)
    data = {"api_key": api_key, "access_token": access_token, "user_id": user_id,
            "login_time": login_time.isoformat(),
            "expires_at": token_expiry(login_time).isoformat()}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)                # whatever the umask or an older file said
        os.write(fd, json.dumps(data, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    add_secret(access_token, api_key)
    return path


def load_credentials(token_file=None, env=None) -> Credentials:
    """Credentials from the environment, completed from the token file.

    Environment variables win over the file.  A file readable by others is
    refused (ValueError), as ssh does with keys.
    """
    env = os.environ if env is None else env
    creds = Credentials(env.get(ENV_KEY, ""), env.get(ENV_SECRET, ""), env.get(ENV_TOKEN, ""),
                        source="env")
    path = Path(token_file or DEFAULT_TOKEN_FILE).expanduser()
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ValueError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a token file ({type(exc).__name__})") from None
        from_file = not creds.access_token
        if not creds.api_key:
            creds.api_key = data.get("api_key", "")
        if not creds.api_secret:
            creds.api_secret = data.get("api_secret", "")
        if from_file:
            creds.access_token = data.get("access_token", "")
            creds.user_id = data.get("user_id", "")
            if data.get("expires_at"):
                creds.expires_at = dt.datetime.fromisoformat(data["expires_at"])
        creds.source = f"{path}" if from_file and not env.get(ENV_KEY) else f"env+{path}"
    add_secret(creds.api_key, creds.api_secret, creds.access_token)
    return creds


def exchange_request_token(api_key: str, api_secret: str, request_token: str,
                           token_file=None, root: str | None = None,
                           timeout: float = 7.0) -> Credentials:
    """``POST /session/token`` with the checksum (through ``kiteconnect``), then save
    the access token.  Raises the client's exception (its message redacted) on
    failure."""
    from kiteconnect import KiteConnect
    install_redaction(api_key, api_secret, request_token)
    kite = KiteConnect(api_key, root=root, timeout=timeout) if root else \
        KiteConnect(api_key, timeout=timeout)
    try:
        data = kite.generate_session(request_token, api_secret=api_secret)
    except Exception as exc:
        msg = redact(exc)
        if msg != str(exc):                  # never let a secret ride out on an exception
            raise RuntimeError(f"{type(exc).__name__}: {msg}") from None
        raise
    login_time = data.get("login_time")
    if isinstance(login_time, str):
        login_time = dt.datetime.fromisoformat(login_time)
    if isinstance(login_time, dt.datetime) and login_time.tzinfo is None:
        login_time = login_time.replace(tzinfo=IST)
    path = save_token(token_file or DEFAULT_TOKEN_FILE, api_key, data["access_token"],
                      data.get("user_id", ""), login_time)
    return Credentials(api_key, api_secret, data["access_token"], data.get("user_id", ""),
                       token_expiry(login_time or dt.datetime.now(IST)), str(path))

