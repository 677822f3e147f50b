"""Login, the token file, expiry and redaction."""

import datetime as dt
import io
import json
import logging
import os
import stat

import pytest

pytest.importorskip("kiteconnect")

from hftcore.cli import main
from hftcore.feeds import IST
from hftcore.kite import auth
from hftcore.kite.server import KiteServer


@pytest.fixture
def srv():
    with KiteServer() as s:
        yield s


def test_kite_login_command_stores_a_private_token_file(srv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KITE_API_SECRET", srv.api_secret)
    path = tmp_path / "cfg" / "token.json"
    redirect = f"https://example.org/cb?action=login&status=success&request_token={srv.request_token}"
    rc = main(["login", "--api-key", srv.api_key, "--request-token", redirect,
               "--token-file", str(path), "--root", srv.url])
    out = capsys.readouterr()
    assert rc == 0
    assert "kite.zerodha.com/connect/login?v=3&api_key=" in out.out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["access_token"] == srv.access_token
    for secret in (srv.access_token, srv.api_secret):
        assert secret not in out.out + out.err
    assert "06:00 IST" in out.out
    creds = auth.load_credentials(path, env={})
    assert creds.access_token == srv.access_token and creds.api_key == srv.api_key
    assert creds.expires_at.astimezone(IST).time() == dt.time(6, 0)
    assert srv.access_token not in repr(creds)


def test_kite_login_with_a_wrong_secret_fails_in_one_line(srv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KITE_API_SECRET", "wrongsecret123")
    rc = main(["login", "--api-key", srv.api_key, "--request-token", srv.request_token,
               "--token-file", str(tmp_path / "t.json"), "--root", srv.url])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "login failed" in err
    assert "wrongsecret123" not in err
    assert not (tmp_path / "t.json").exists()


def test_kite_token_expires_at_the_next_six_am_ist():
    before = dt.datetime(2026, 11, 27, 5, 30, tzinfo=IST)
    after = dt.datetime(2026, 11, 27, 9, 0, tzinfo=IST)
    assert auth.token_expiry(before) == dt.datetime(2026, 11, 27, 6, 0, tzinfo=IST)
    assert auth.token_expiry(after) == dt.datetime(2026, 11, 28, 6, 0, tzinfo=IST)
    utc_evening = dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.timezone.utc)   # 04:30 IST, 28th
    assert auth.token_expiry(utc_evening) == dt.datetime(2026, 11, 28, 6, 0, tzinfo=IST)
    creds = auth.Credentials("k" * 8, "", "t" * 16, expires_at=auth.token_expiry(after))
    creds.require_token(dt.datetime(2026, 11, 28, 0, 29, tzinfo=dt.timezone.utc))  # 05:59 IST
    with pytest.raises(ValueError, match="expired at 2026-11-28 06:00 IST.*hftcore login"):
        creds.require_token(dt.datetime(2026, 11, 28, 0, 31, tzinfo=dt.timezone.utc))


def test_kite_credentials_env_wins_and_open_files_are_refused(tmp_path):
    path = auth.save_token(tmp_path / "t.json", "filekey123", "filetoken123456")
    creds = auth.load_credentials(path, env={"KITE_ACCESS_TOKEN": "envtoken123456",
                                             "KITE_API_KEY": "envkey123"})
    assert (creds.api_key, creds.access_token) == ("envkey123", "envtoken123456")
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        auth.load_credentials(path, env={})


def test_kite_request_token_parsing():
    assert auth.parse_request_token(" abc123 ") == "abc123"
    assert auth.parse_request_token("http://x/?request_token=zz9&status=success") == "zz9"
    with pytest.raises(ValueError, match="failed"):
        auth.parse_request_token("http://x/?request_token=zz9&status=error")
    with pytest.raises(ValueError):
        auth.parse_request_token("http://x/?action=login")


def test_kite_redaction_masks_messages_arguments_and_tracebacks():
    token = "tok" + "9f8e7d6c5b4a"
    auth.install_redaction(token)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)                # added after installing: still masked
    log = logging.getLogger("hftcore.test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.warning("Authorization: token key:%s", token)
        log.info(f"url ws://h/?access_token={token}")
        try:
            raise RuntimeError(f"boom {token}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert token not in text
    assert text.count("***") == 3 and "RuntimeError: boom ***" in text
    assert auth.redact_obj({"a": [f"x{token}"]}) == {"a": ["x***"]}
