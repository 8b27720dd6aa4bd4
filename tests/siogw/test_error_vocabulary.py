"""One vocabulary of ErrorInfo reasons: UPPER_SNAKE, one per class, all in docs/errors.md."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import grpc
import pytest

from server.errors import reason_for, status_code_for
from siogw_api.errors import CODE_PATTERN, SiogwError, upper_snake

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("siogw_api", "signing", "audit", "server", "clients", "softhsm", "siogw")


def _all_error_classes() -> list[type[SiogwError]]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.endswith("__main__") or ".v1." in info.name:
                continue
            importlib.import_module(info.name)
    seen: list[type[SiogwError]] = []
    todo: list[type[SiogwError]] = [SiogwError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith(("tests", "__main__")):
            continue
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def _documented() -> dict[str, str]:
    """reason -> gRPC status name, from the table in docs/errors.md."""
    text = (ROOT / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| `([A-Z_]+)` \|", text, re.MULTILINE)
    return dict(rows)


def test_every_code_is_upper_snake_and_documented_with_its_status() -> None:
    documented = _documented()
    missing = []
    for cls in _all_error_classes():
        assert CODE_PATTERN.fullmatch(cls.reason_code), cls
        exc = cls.__new__(cls)  # the mapping reads the class only
        status = status_code_for(exc).name
        if documented.get(cls.reason_code) != status:
            missing.append(f"{cls.__module__}.{cls.__qualname__}: {cls.reason_code} {status}")
    assert not missing, "docs/errors.md lacks (or maps differently): " + "; ".join(missing)


def test_one_reason_never_means_two_statuses() -> None:
    by_code: dict[str, set[str]] = {}
    for cls in _all_error_classes():
        by_code.setdefault(cls.reason_code, set()).add(status_code_for(cls.__new__(cls)).name)
    assert {c: s for c, s in by_code.items() if len(s) > 1} == {}


def test_reason_is_the_class_code_never_instance_text() -> None:
    from audit.errors import AuditUnavailable
    from server.resources.errors import InvalidIdentifier

    assert reason_for(AuditUnavailable("disk full: /var/log")) == "AUDIT_UNAVAILABLE"
    bad_iin = InvalidIdentifier("IIN", "check_digit", "the check digit is wrong")
    assert reason_for(bad_iin) == "INVALID_IDENTIFIER"
    assert bad_iin.error_metadata() == {"kind": "IIN", "check": "check_digit"}
    assert reason_for(ValueError("boom")) == "INTERNAL"
    assert status_code_for(ValueError("boom")) is grpc.StatusCode.INTERNAL


def test_a_class_with_a_bad_code_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="UPPER_SNAKE"):
        type("Bad", (SiogwError,), {"reason_code": "not a code"})
    assert upper_snake("UntrustedChain") == "UNTRUSTED_CHAIN"
    assert upper_snake("KeyURIError") == "KEY_URI_ERROR"
    assert upper_snake("CAError") == "CA_ERROR"
