"""The catalogue matches SPEC.md's Appendix 2 table; role -> basis (R1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.resources import (
    CATALOGUE,
    AccessRight,
    Basis,
    BasisNotAllowed,
    Role,
    UnknownResource,
    allowed_bases,
    check_basis,
    get_resource,
)
from server.resources.catalogue import PARAMETERS
from siogw_api.errors import InputError, PolicyError

SPEC = Path("/work/shared/SPEC.md")


def test_52_resources_numbered_1_to_52() -> None:
    assert list(CATALOGUE) == list(range(1, 53))
    assert all(CATALOGUE[n].number == n for n in CATALOGUE)


def test_only_11_is_truncated() -> None:
    assert [n for n, r in CATALOGUE.items() if r.access_right is AccessRight.TRUNCATED] == [11]
    assert get_resource(11).truncated and not get_resource(1).truncated
    schema = get_resource(11).schema
    assert schema is not None
    kept = set(schema.subject) | set(schema.row)
    assert kept and not any("amount" in k for k in kept)


@pytest.mark.skipif(not SPEC.exists(), reason="shared SPEC.md not present")
def test_names_match_spec_table() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+?) \| (.+?) \|$", SPEC.read_text(), re.M)
    table = {int(n): (name, right) for n, name, right in rows}
    assert sorted(table) == list(range(1, 53))
    for n, (name, right) in table.items():
        assert CATALOGUE[n].name == name
        expected = AccessRight.TRUNCATED if "truncated" in right else AccessRight.FULL
        assert CATALOGUE[n].access_right is expected


def test_parameters_are_known_and_identifier_keyed() -> None:
    for r in CATALOGUE.values():
        assert r.parameters, r
        assert set(r.parameters) <= set(PARAMETERS)
        assert {"iin", "bin"} & set(r.parameters), r  # every resource is keyed by a subject
    assert get_resource(1).parameters == ("iin",)
    assert get_resource(2).parameters == ("bin",)
    assert "plate" in get_resource(5).parameters


@pytest.mark.parametrize("bad", [0, 53, -1, 10**9, "1", 1.0, None, True])
def test_unknown_resource(bad: object) -> None:
    with pytest.raises(UnknownResource) as ei:
        get_resource(bad)
    assert isinstance(ei.value, InputError)


def test_role_basis_table() -> None:
    assert allowed_bases("agency_user") == {Basis.FINANCIAL_MONITORING}
    assert check_basis("agency_user", "financial_monitoring") is Basis.FINANCIAL_MONITORING
    for role in ("operator", "controller", "prosecutor", "security_officer"):
        assert Role(role) and allowed_bases(role) == frozenset()
        with pytest.raises(BasisNotAllowed):
            check_basis(role, "financial_monitoring")
    with pytest.raises(BasisNotAllowed) as ei:
        check_basis("agency_user", "curiosity")
    assert isinstance(ei.value, PolicyError)
    assert allowed_bases("nobody") == frozenset()
