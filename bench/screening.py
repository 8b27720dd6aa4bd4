"""Screening throughput against a list of 100,000 entries (issue 16, point 6).

Builds a synthetic list (Cyrillic names of persons and entities, a Latin alias for some,
dates of birth, IINs for a third), then measures, in the same run:

* ``index build``: :class:`server.screening.match.ListIndex` over the entries (what a
  publication costs in memory);
* ``screen (blocked)``: :meth:`ListIndex.screen` per subject -- an IIN lookup, then
  rapidfuzz on the names sharing a blocking key with the subject's normalised name;
* baseline ``dict by IIN``: a plain dict lookup by IIN (the floor: no name matching);
* baseline ``extractOne, no blocking``: rapidfuzz ``process.extractOne`` over all the
  normalised names (the same scorer, no index);
* ``service.screen (SQLite)``: the service's screening with its result stored (one row
  per screening, as the gateway does it, minus gRPC and the audit log);
* ``re-screen``: every watched client against a new version, results stored.

The subjects are a mix: a quarter screened by a listed IIN, a quarter by the Latin
spelling of a listed Cyrillic name with its date of birth, half by names not listed.
It also prints the blocked index's recall on the Latin spellings against the unblocked
scan. No assertions on timing (``tests/bench/test_screening_bench.py`` runs it small).

    .venv/bin/python bench/screening.py [--entries 100000] [--subjects 2000]
                                        [--baseline-subjects 100] [--watched 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anyascii import anyascii

from server.resources.identifiers import make_iin
from server.screening.match import (
    MATCH,
    ListIndex,
    Subject,
    Thresholds,
    scan_all,
)
from server.screening.parse import ListEntry

_C = "бвгдзклмнпрстхшжқғ"
_V = "аеиоуыәөұ"
_FIRST = ("Айгерим", "Ерлан", "Нурлан", "Динара", "Сергей", "Ольга", "Тимур", "Асель",
          "Бауыржан", "Жанна", "Игорь", "Мадина", "Руслан", "Гульнара", "Аскар", "Юлия")
_SUFFIX = ("ов", "ев", "ин", "бек", "баев", "улы", "енко", "ский")


def _root(rng: random.Random) -> str:
    return "".join(rng.choice(_C) + rng.choice(_V) for _ in range(rng.randint(2, 3)))


def make_entries(n: int, seed: int = 7) -> list[ListEntry]:
    rng = random.Random(seed)
    out: list[ListEntry] = []
    for i in range(n):
        if rng.random() < 0.1:
            name = f"ЖШС «{_root(rng).title()}{rng.choice(('Трейд', 'Инвест', ''))}»"
            out.append(ListEntry(f"E-{i}", "entity", "", (name,), "", "KZ", ""))
            continue
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000))
        surname = (_root(rng) + rng.choice(_SUFFIX)).title()
        name = f"{surname} {rng.choice(_FIRST)}"
        names: tuple[str, ...] = (name, anyascii(name)) if rng.random() < 0.3 else (name,)
        iin = make_iin(born, rng.choice(("M", "F")), rng.randrange(10000)) if rng.random() < 0.33 \
            else ""
        out.append(ListEntry(f"P-{i}", "person", iin, names, born.isoformat(), "KZ", ""))
    return out


def make_subjects(entries: Sequence[ListEntry], n: int, seed: int = 11) -> list[Subject]:
    rng = random.Random(seed)
    with_iin = [e for e in entries if e.iin_bin]
    persons = [e for e in entries if e.kind == "person"]
    subjects: list[Subject] = []
    for i in range(n):
        if i % 4 == 0 and with_iin:
            subjects.append(Subject(iin_bin=rng.choice(with_iin).iin_bin))
        elif i % 4 == 1:
            e = rng.choice(persons)
            latin = " ".join(reversed(anyascii(e.names[0]).split()))  # another word order
            subjects.append(Subject(name=latin, birth_date=e.birth_date))
        else:
            name = f"{(_root(rng) + rng.choice(_SUFFIX)).title()} {rng.choice(_FIRST)}"
            subjects.append(Subject(name=name, birth_date="1990-01-01"))
    return subjects


def per_second(fn: Callable[[Subject], Any], subjects: Sequence[Subject]) -> float:
    start = time.perf_counter()
    for s in subjects:
        fn(s)
    return len(subjects) / max(time.perf_counter() - start, 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--baseline-subjects", type=int, default=100)
    ap.add_argument("--watched", type=int, default=10_000)
    args = ap.parse_args(argv)

    thresholds = Thresholds()
    entries = make_entries(args.entries)
    start = time.perf_counter()
    index = ListIndex.build("terrorist", 1, entries)
    built = time.perf_counter() - start
    subjects = make_subjects(entries, args.subjects)
    few = subjects[: args.baseline_subjects]

    blocked = per_second(lambda s: index.screen(s, thresholds), subjects)
    by_iin = {e.iin_bin: e for e in entries if e.iin_bin}
    iin_subjects = [s for s in subjects if s.iin_bin]
    dict_rate = per_second(lambda s: by_iin.get(s.iin_bin), iin_subjects or subjects)
    names_few = [s for s in few if s.name]
    scan_rate = per_second(lambda s: scan_all(index, s, thresholds), names_few)

    latin = [s for s in subjects if s.name and s.birth_date != "1990-01-01"][:200]
    found_blocked = sum(1 for s in latin
                        if any(h.outcome == MATCH for h in index.screen(s, thresholds)))
    found_scan = sum(1 for s in latin
                     if any(h.outcome == MATCH for h in scan_all(index, s, thresholds)))

    service_rate, rescreen_s = _service(entries, subjects[:500], args.watched, thresholds)

    print(f"list of {len(entries):,} entries ({len(index.names):,} names); index built in "
          f"{built:.2f} s")
    print(f"{'what':<44} {'screenings/s':>14} {'vs blocked':>11}")
    rows = [("screen (blocked index: IIN dict + keys + rapidfuzz)", blocked),
            ("baseline: dict lookup by IIN", dict_rate),
            ("baseline: rapidfuzz extractOne, no blocking", scan_rate),
            ("service.screen (SQLite, result stored)", service_rate)]
    for what, value in rows:
        print(f"{what[:44]:<44} {value:>14,.1f} {value / blocked:>10.3f}x")
    print(f"recall on Latin spellings of listed names (match): blocked {found_blocked}/"
          f"{len(latin)}, unblocked {found_scan}/{len(latin)}")
    print(f"re-screen of {args.watched:,} watched clients against the list (results "
          f"stored): "
          f"{rescreen_s:.2f} s ({args.watched / max(rescreen_s, 1e-9):,.0f} subjects/s)")
    return 0


def _service(entries: Sequence[ListEntry], subjects: Sequence[Subject], watched: int,
             thresholds: Thresholds) -> tuple[float, float]:
    import sqlalchemy as sa

    from server.screening import ScreeningService
    from server.store import Store
    from server.store import schema as cp

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db").open()
        try:
            service = ScreeningService(store.engine, thresholds=thresholds)
            service.publish(user_id="bench", role="list_officer", list_name="terrorist",
                            fmt="csv", content=b"bench", entries=entries)
            rate = per_second(lambda s: service.screen(
                user_id="bench", role="compliance_officer", subject=s), subjects)
            rng = random.Random(3)
            now = dt.datetime.now(dt.UTC)
            with store.engine.begin() as conn:
                conn.execute(sa.insert(cp.screening_watch), [
                    {"provider": "bench", "client_ref": f"c{i}", "iin_bin": "",
                     "name": f"{(_root(rng) + rng.choice(_SUFFIX)).title()} "
                             f"{rng.choice(_FIRST)}",
                     "birth_date": "", "registered_by": "bench", "registered_at": now}
                    for i in range(watched)])
            service.publish(user_id="bench", role="list_officer", list_name="terrorist",
                            fmt="csv", content=b"bench v2", entries=entries)
            start = time.perf_counter()
            screened, _ = service.rescreen("terrorist", actor="bench")
            assert screened == watched
            return rate, time.perf_counter() - start
        finally:
            store.close()


if __name__ == "__main__":
    raise SystemExit(main())
