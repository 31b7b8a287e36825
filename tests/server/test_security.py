"""The token file, loopback detection, Host checks and input confinement, through their public functions."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import DataError, StoreError
from modelyard.server.security import (
    check_ref,
    host_allowed,
    is_loopback,
    load_or_create_token,
    loopback_hosts,
    resolve_dataset,
    token_matches,
)


def test_token_created_once_with_0600(tmp_path):
    t1 = load_or_create_token(tmp_path / "store")
    path = tmp_path / "store" / "ui-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(t1) >= 40 and load_or_create_token(tmp_path / "store") == t1
    assert load_or_create_token(tmp_path / "other") != t1  # random, never a default
    assert not [p for p in (tmp_path / "store").iterdir() if p.name != "ui-token"]  # no temp file left


def test_token_file_readable_by_others_is_refused(tmp_path):
    load_or_create_token(tmp_path)
    os.chmod(tmp_path / "ui-token", 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        load_or_create_token(tmp_path)


def test_weak_token_is_refused(tmp_path):
    (tmp_path / "ui-token").write_text("secret\n")
    os.chmod(tmp_path / "ui-token", 0o600)
    with pytest.raises(StoreError, match="shorter than 32"):
        load_or_create_token(tmp_path)


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("127.3.4.5", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("192.168.1.4", False), ("::", False), ("example.com", False),
])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_host_header_check():
    ok = loopback_hosts()
    assert host_allowed("127.0.0.1:8765", ok) and host_allowed("localhost", ok) and host_allowed("[::1]:80", ok)
    assert not host_allowed("evil.example:8765", ok) and not host_allowed(None, ok)
    assert not host_allowed("127.0.0.1.evil.example", ok)


def test_token_compare():
    assert token_matches("abc", "abc") and not token_matches("abd", "abc") and not token_matches(None, "abc")


@pytest.mark.parametrize("ref", ["churn/3", "churn@production", "3f9a2c", "a.b-c_d/10", "name"])
def test_good_refs(ref):
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "../x", "a/../b", "a b", "/etc/passwd", "a/b/c", "x" * 300, "a;drop"])
def test_bad_refs(ref):
    with pytest.raises(DataError, match="not a valid version ref"):
        check_ref(ref)


def test_dataset_confinement(tmp_path):
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "secret.csv").write_text("x,y\n1,2\n")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    assert resolve_dataset("sub/a.csv", [root]) == str(root / "sub" / "a.csv")
    assert resolve_dataset(str(root / "sub" / "a.csv"), [root]) == str(root / "sub" / "a.csv")
    assert resolve_dataset("sklearn:iris", [root]) == "sklearn:iris"
    for bad in ("../secret.csv", str(tmp_path / "secret.csv"), "link.csv", "sub/../../secret.csv"):
        with pytest.raises(DataError, match="outside the folders"):
            resolve_dataset(bad, [root])
    with pytest.raises(DataError, match=r"\.csv, \.parquet or \.npz"):
        resolve_dataset("sub/a.txt", [root])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="./\\~:abc%\x00-_", min_size=1, max_size=30))
def test_resolved_paths_never_escape(tmp_path_factory, spec):
    root = tmp_path_factory.getbasetemp() / "confined"
    root.mkdir(exist_ok=True)
    try:
        out = resolve_dataset(spec, [root])
    except DataError:
        return
    assert out.startswith("sklearn:") or os.path.realpath(out).startswith(str(root.resolve()) + os.sep)


def test_a_token_that_cannot_be_written_is_one_sentence(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("permissions do not bind here (root)")
        with pytest.raises(StoreError, match="cannot create the dashboard token .* serve on 127.0.0.1"):
            load_or_create_token(folder)
    finally:
        folder.chmod(0o700)
