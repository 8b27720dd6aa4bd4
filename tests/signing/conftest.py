"""Fixtures of the signing tests: the PKCS#11 implementations (tests/p11impls.py)."""

from tests.p11impls import (  # noqa: F401  (pytest finds fixtures by name)
    opencryptoki_impl,
    p11impl,
    softhsm_impl,
    tpm2_impl,
)
