"""The ordering page's users, passwords, second factor, sessions and login limit."""

from __future__ import annotations

import stat
from pathlib import Path

import pyotp
import pytest

from streams.cli import main
from streams.web.sessions import LoginLimiter, Signer
from streams.web.users import (
    CodeChecker,
    UsersError,
    UserStore,
    hash_password,
    verify_password,
)

PASSWORD = "correct horse battery"


def test_a_password_is_kept_as_a_salted_scrypt_hash_and_only_the_right_one_matches() -> None:
    """Given one password hashed twice, then the two hashes differ (random salt), neither
    contains the password, both verify it, and a wrong password or a damaged hash fails."""
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and PASSWORD not in first
    assert first.startswith("scrypt$")
    assert verify_password(first, PASSWORD) and verify_password(second, PASSWORD)
    assert not verify_password(first, PASSWORD + "!")
    assert not verify_password("scrypt$broken", PASSWORD)


def test_adding_users_writes_a_private_file_with_hashes_and_a_second_factor_for_approvers(
    tmp_path: Path,
) -> None:
    """Given an empty users file, when a buyer and an approver are added, then the file is
    mode 0600, holds no password, the approver (only) has a TOTP secret, a second add of
    the same login is refused unless replaced, and bad roles, logins and short passwords
    are refused with the reason."""
    store = UserStore(tmp_path / "users.yaml")
    buyer = store.add("bob", "buyer", PASSWORD)
    approver = store.add("alice", "approver", PASSWORD)
    text = store.path.read_text()
    assert PASSWORD not in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert buyer.totp_secret is None and approver.totp_secret
    assert UserStore(store.path).get("alice") == approver
    with pytest.raises(UsersError, match="exists"):
        store.add("bob", "buyer", PASSWORD)
    assert store.add("bob", "viewer", PASSWORD, replace=True).role == "viewer"
    with pytest.raises(UsersError, match="role"):
        store.add("carol", "boss", PASSWORD)
    with pytest.raises(UsersError, match="login"):
        store.add("Carol Smith", "buyer", PASSWORD)
    with pytest.raises(UsersError, match="at least"):
        store.add("carol", "buyer", "short")
    assert repr(approver) == "User(login='alice', role='approver')"


def test_a_hand_edited_users_file_with_a_mistake_is_refused_with_its_place(
    tmp_path: Path,
) -> None:
    """Given a users file whose approver has no TOTP secret, then reading it fails naming
    the entry and the key to fix."""
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n  - login: alice\n    role: approver\n    password: " + hash_password(PASSWORD)
    )
    with pytest.raises(UsersError, match=r"users\[0\]\.totp_secret"):
        UserStore(path).get("alice")


def test_a_totp_code_is_accepted_once_within_its_window(tmp_path: Path) -> None:
    """Given an approver, then the current code is accepted, the same code again is refused
    (replay), the previous window's code is refused after a newer one was used, and codes
    of the wrong shape or value are refused."""
    user = UserStore(tmp_path / "u.yaml").add("alice", "approver", PASSWORD)
    assert user.totp_secret
    totp, codes, now = pyotp.TOTP(user.totp_secret), CodeChecker(), 1_790_000_000.0
    assert codes.check(user, totp.at(now), at=now)
    assert not codes.check(user, totp.at(now), at=now + 1)
    assert not codes.check(user, totp.at(now - 30), at=now + 2)
    assert codes.check(user, totp.at(now + 30), at=now + 30)
    assert not codes.check(user, "12345", at=now)
    assert not codes.check(user, "abcdef", at=now)


def test_a_session_cookie_is_refused_when_forged_or_expired() -> None:
    """Given a signed session, then it reads back until it expires; a cookie signed with
    another key, or with its payload changed, is refused."""
    signer = Signer(b"k" * 32, lifetime_s=60)
    session = signer.new("alice", "fp", now=1000)
    cookie = signer.dump(session)
    assert signer.load(cookie, now=1059) == session
    assert signer.load(cookie, now=1060) is None
    assert Signer(b"x" * 32, 60).load(cookie, now=1000) is None
    other = Signer(b"k" * 32, 60).dump(signer.new("mallory", "fp", now=1000))
    forged = other.split(".")[0] + "." + cookie.split(".")[1]
    assert signer.load(forged, now=1000) is None
    assert signer.load("garbage", now=1000) is None


def test_failed_logins_lock_the_login_and_the_address_for_the_window() -> None:
    """Given 5 failures for one login, then a 6th attempt of that login must wait (from any
    address) while another login from another address may try; 20 failures from one address
    lock it for every login; after the window all may try again; a success clears the
    login's count."""
    limiter, now = LoginLimiter(per_login=5, per_address=20, window_s=900), 1000.0
    for i in range(5):
        assert limiter.retry_after("alice", "10.0.0.1", now=now + i) == 0
        limiter.failed("alice", "10.0.0.1", now=now + i)
    assert limiter.retry_after("alice", "10.0.0.9", now=now + 10) > 0
    assert limiter.retry_after("bob", "10.0.0.2", now=now + 10) == 0
    assert limiter.retry_after("alice", "10.0.0.9", now=now + 901) == 0
    for i in range(20):
        limiter.failed(f"user{i}", "10.0.0.3", now=now + i)
    assert limiter.retry_after("carol", "10.0.0.3", now=now + 30) > 0
    limiter.failed("dave", "10.0.0.4", now=now)
    limiter.succeeded("dave")
    for i in range(4):
        limiter.failed("dave", "10.0.0.5", now=now + i)
    assert limiter.retry_after("dave", "10.0.0.6", now=now + 5) == 0


def test_the_login_limit_forgets_expired_failures_when_many_logins_were_tried() -> None:
    """Given failures for more distinct logins than the limiter keeps, when the window has
    passed, then the next failure drops the expired entries (memory stays bounded) and a
    login still within its window keeps its count."""
    limiter = LoginLimiter(per_login=2, per_address=10**6, window_s=60)
    limiter.max_keys = 100
    for i in range(99):
        limiter.failed(f"spray{i}", "10.0.0.7", now=0)
    limiter.failed("eve", "10.0.0.8", now=50)
    limiter.failed("eve", "10.0.0.8", now=61)
    assert len(limiter._failures) <= 4
    assert limiter.retry_after("eve", "10.0.0.9", now=62) > 0


def test_the_user_add_command_prints_the_totp_uri_once_and_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given STOCKFLOW_WEB_PASSWORD, when `stockflow web user add alice --role approver`
    runs, then it prints an otpauth:// URI naming alice and never the password; `user list`
    shows the role without secrets; a short password fails with exit 2 and says why."""
    monkeypatch.setenv("STOCKFLOW_WEB_USERS", str(tmp_path / "users.yaml"))
    monkeypatch.setenv("STOCKFLOW_WEB_PASSWORD", PASSWORD)
    assert main(["web", "user", "add", "alice", "--role", "approver"]) == 0
    out = capsys.readouterr()
    assert "otpauth://totp/stockflow:alice?secret=" in out.out
    assert PASSWORD not in out.out + out.err
    assert main(["web", "user", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.strip() == "alice\tapprover\tTOTP"
    monkeypatch.setenv("STOCKFLOW_WEB_PASSWORD", "short")
    assert main(["web", "user", "add", "bob", "--role", "buyer"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err


def test_stockflow_web_without_users_exits_with_the_command_that_adds_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an empty users file location, when `stockflow web` starts, then it exits 2
    before starting anything and says how to add a user."""
    monkeypatch.setenv("STOCKFLOW_WEB_USERS", str(tmp_path / "none.yaml"))
    assert main(["web"]) == 2
    assert "stockflow web user add NAME --role admin" in capsys.readouterr().err
