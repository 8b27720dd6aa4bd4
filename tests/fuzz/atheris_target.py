"""An atheris (libFuzzer) target over the parsers of outside input, run in a subprocess.

``python tests/fuzz/atheris_target.py -max_total_time=20 CORPUS_DIR`` -- the first input
byte picks the parser (DSSE envelope, query, admin command, audit record, segment frames,
certificate, CRL, checkpoint note); the rest is its input. Any exception other than a
:class:`~siogw_api.errors.SiogwError` is a crash (libFuzzer exits non-zero and writes the
input as ``crash-*``). Coverage-guided, so it reaches corners the hypothesis strategies of
``test_parsers.py`` do not; ``test_atheris.py`` runs it for a bounded time in ``make test``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import atheris

with atheris.instrument_imports():
    from audit.record import decode_record
    from audit.segments import check_segment_content
    from server.admin import parse_admin_command
    from server.query import parse_query
    from signing import dsse
    from signing.crl import load_crl
    from signing.note import open_checkpoint
    from signing.trust import load_certificates
    from siogw_api.errors import SiogwError

PARSERS: list[Callable[[bytes], Any]] = [
    dsse.decode_envelope,
    parse_query,
    parse_admin_command,
    decode_record,
    lambda data: check_segment_content(data, True),
    load_certificates,
    load_crl,
    lambda data: open_checkpoint(data, []),
]

#: Corpus files are named by the parser they feed: the first byte says which.
KINDS = ["dsse", "query", "admin", "record", "segment", "cert", "crl", "note"]


def one_input(data: bytes) -> None:
    if not data:
        return
    parse = PARSERS[data[0] % len(PARSERS)]
    try:
        parse(bytes(data[1:]))
    except SiogwError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
