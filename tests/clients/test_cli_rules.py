"""Issue 15, point 5 (part "rules"), through ``siogw client`` as a new user runs it:
the consent (§10-§11) asked for with a typed "I agree", and the token's PIN age (§12)
reported at login, shown to the user and kept for the security officer's list.

Subprocesses against the real TLS gateway of ``client_world`` (SoftHSM tokens).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.config import DEFAULT_CONSENT_TEXT, DEFAULT_CONSENT_VERSION, load_config
from server.ops import Actor, CertificateService, OpsContext
from signing.pin_ages import record_pin_change
from siogw import demo

from .conftest import ClientWorld


@pytest.fixture(scope="module")
def home(client_world: ClientWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clients.session import write_settings

    path = tmp_path_factory.mktemp("rules-home")
    write_settings(path, client_world.world.client_settings(client_world.port))
    return path


def siogw(home: Path, *args: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    """``siogw client ARGS`` with ``stdin`` as its input ("" is an immediate EOF)."""
    return subprocess.run(
        [sys.executable, "-m", "siogw", "client", *args],
        env={**os.environ, "SIOGW_HOME": str(home)}, input=stdin, capture_output=True,
        text=True, timeout=120, check=False,
    )


def _login(client_world: ClientWorld, home: Path, name: str) -> subprocess.CompletedProcess[str]:
    person = client_world.person(name)
    return siogw(home, "login", "--user", person.user_id, "--key", person.key_uri,
                 "--cert", str(person.cert_file),
                 "--sms-outbox", str(client_world.home / "sms-outbox.jsonl"))


def _query(home: Path) -> subprocess.CompletedProcess[str]:
    iin = demo.demo_parameters(1)["iin"]
    return siogw(home, "query", "1", "-p", f"iin={iin}", "--task-ref", "CASE-R-1",
                 "--justification", "consent test")


def test_consent_text_names_each_obligation_in_russian_and_english() -> None:
    text = DEFAULT_CONSENT_TEXT
    for words in (
        "Не передавать средства ЭЦП",  # noqa: RUF001 (Russian)
        "не менее одного раза в месяц менять пароль к ЭЦП",
        "персональных данных", "охраняемых законом тайн", "ответственность",
        "Not to hand my electronic signature", "at least once a month",
        "personal data", "secrets", "liability",
    ):
        assert words in text, words
    assert DEFAULT_CONSENT_VERSION in text  # the text names the version it is


def test_consent_needs_a_typed_i_agree_and_pin_age_is_reported(
    client_world: ClientWorld, home: Path
) -> None:
    zhan = client_world.person("zhan")
    changed = _dt.datetime.now(_dt.UTC) - _dt.timedelta(days=40)
    record_pin_change(home, zhan.token_label, changed)

    r = _login(client_world, home, "zhan")
    assert r.returncode == 0, r.stderr
    assert "token PIN last changed" in r.stdout
    assert "warning: your token's PIN was last changed" in r.stdout and "40 days ago" in r.stdout
    assert "consent 2026-2 required" in r.stdout

    digest = hashlib.sha256(DEFAULT_CONSENT_TEXT.encode()).hexdigest()
    # stdin at EOF: a clean refusal, nothing signed, no traceback
    r = siogw(home, "consent", stdin="")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "consent not given: nothing was signed" in r.stderr
    assert "не менее одного раза в месяц" in r.stdout and digest in r.stdout
    # anything but the phrase is a refusal too
    r = siogw(home, "consent", stdin="yes\n")
    assert r.returncode == 1 and "consent not given" in r.stderr
    r = _query(home)
    assert r.returncode != 0 and "consent" in r.stderr  # still no consent: refused

    r = siogw(home, "consent", stdin="I agree\n")
    assert r.returncode == 0, r.stderr
    assert "consent signed at" in r.stdout and "(version 2026-2)" in r.stdout
    r = _query(home)
    assert r.returncode == 0, r.stderr

    # scripts: --agree skips the prompt, and still prints the version and the digest
    r = siogw(home, "consent", "--agree", stdin=None)
    assert r.returncode == 0, r.stderr
    assert f"version {DEFAULT_CONSENT_VERSION}, SHA-256 of the text: {digest}" in r.stdout

    # §12: kept with the certificate, shown in the security officer's certificate list
    config = load_config(client_world.home, env={})
    engine = sa.create_engine(config.effective_database_url)
    try:
        ctx = OpsContext(engine=engine, record=lambda *_a: None)
        certs = CertificateService(ctx, trust=None)  # type: ignore[arg-type]
        [status] = certs.overview(Actor("saule", "security_officer"), user_id=zhan.user_id)
    finally:
        engine.dispose()
    info = status.certificate
    assert info.pin_changed_at is not None
    assert abs(info.pin_changed_at - changed) < _dt.timedelta(seconds=1)
    assert info.pin_reported_at is not None
    assert any("40 days old" in w for w in status.warnings), status.warnings


def test_login_without_a_recorded_pin_change_warns_of_unknown_age(
    client_world: ClientWorld, tmp_path: Path
) -> None:
    from clients.session import write_settings

    write_settings(tmp_path, client_world.world.client_settings(client_world.port))
    r = _login(client_world, tmp_path, "zhan")
    assert r.returncode == 0, r.stderr
    assert "token PIN last changed" not in r.stdout
    assert "did not report when your token's PIN was last changed" in r.stdout
