"""Matching a subject against the entries of the lists (issue 16, point 6).

**One Latin form.** Names arrive in Cyrillic (Russian and Kazakh letters) or in Latin
spellings of them (passport transliterations differ: ``Zhumabaev``/``Jumabayev``,
``Yuriy``/``Iurii``, ``Khasanov``/``Hasanov``). :func:`normalise_name` brings every
spelling to one form: ``anyascii`` transliterates any script to ASCII (it knows the
Kazakh letters (ә ғ қ ң ө ұ and the rest), which ``cyrtranslit`` leaves as they are; ``Unidecode``
would do as well but is GPL, ``transliterate`` has no Kazakh either), then
:func:`phonetic_fold` folds the spellings that differ between transliteration systems
(``kh``/``h``, ``zh``/``j``, ``ts``/``c``, ``yu``/``iu``/``u``, ``y``/``i``, ``q``/``k``,
doubled letters ...) and the tokens are sorted, so word order does not count.

**Similarity.** ``rapidfuzz`` (``fuzz.token_sort_ratio`` on the normalised forms, 0-100).

**Blocking.** :class:`ListIndex` keeps every entry by IIN/BIN (a dict) and every name by a
blocking key: the first :data:`BLOCK_PREFIX` letters of each of its normalised tokens. A
subject's candidates are the entries sharing at least one key with it; only those are
scored. With 100,000 entries a screening scores a few hundred names instead of all of
them (``bench/screening.py`` measures both).

**The outcome** (thresholds from ``[screening]`` in ``siogw.toml``):

* ``match`` -- the subject's IIN/BIN is an entry's; or a name scores at least
  ``match_threshold`` and the dates of birth are the same day;
* ``possible_match`` -- a name scores at least ``possible_threshold`` and the dates of
  birth do not contradict it (one is unknown, or only the year is known and it is the
  same), or a name scores at least ``match_threshold`` while the dates differ;
* ``no_match`` -- nothing of the above.

A subject's risk level plays no part (S§30): there is no such input.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from anyascii import anyascii
from rapidfuzz import fuzz, process

from server.screening.parse import ListEntry

MATCH = "match"
POSSIBLE_MATCH = "possible_match"
NO_MATCH = "no_match"
#: Outcomes from the weakest to the strongest.
OUTCOMES: tuple[str, ...] = (NO_MATCH, POSSIBLE_MATCH, MATCH)

#: Default thresholds (``[screening]`` match_threshold / possible_threshold).
DEFAULT_MATCH_THRESHOLD = 92.0
DEFAULT_POSSIBLE_THRESHOLD = 82.0
#: Letters of a normalised token that make a blocking key.
BLOCK_PREFIX = 3
#: Tokens shorter than this make no blocking key (initials, particles).
MIN_TOKEN = 2
#: A blocking key shared by more names than this (and 1% of the index) is common (a
#: frequent first name): a subject with a rarer key is not compared through it.
COMMON_BLOCK = 500

# Longest first: each is applied once, left to right, by one regex.
_FOLDS: tuple[tuple[str, str], ...] = (
    ("shch", "sh"), ("sch", "sh"), ("tch", "ch"),
    ("kh", "h"), ("gh", "g"), ("zh", "j"), ("dj", "j"), ("dzh", "j"),
    ("ts", "c"), ("tz", "c"), ("cz", "ch"), ("ph", "f"), ("ck", "k"),
    ("yu", "u"), ("iu", "u"), ("ju", "u"), ("ya", "a"), ("ia", "a"), ("ja", "a"),
    ("yo", "e"), ("io", "e"), ("jo", "e"), ("ye", "e"), ("je", "e"),
    ("iy", "i"), ("yi", "i"), ("ii", "i"), ("ij", "i"), ("yy", "i"), ("y", "i"),
    ("ou", "u"), ("q", "k"), ("w", "v"), ("x", "ks"), ("ee", "i"),
)
_FOLD_RE = re.compile("|".join(re.escape(a) for a, _ in sorted(_FOLDS, key=lambda p: -len(p[0]))))
_FOLD_MAP = dict(_FOLDS)
_NOT_LETTER = re.compile(r"[^a-z ]+")
_DOUBLE = re.compile(r"([a-z])\1+")


@functools.lru_cache(maxsize=1 << 16)
def phonetic_fold(token: str) -> str:
    """One ASCII lower-case token with transliteration variants folded (module docstring)."""
    while True:  # to a fixed point: every fold shortens the token or removes an x or a z
        folded = _DOUBLE.sub(r"\1", _FOLD_RE.sub(lambda m: _FOLD_MAP[m.group(0)], token))
        if folded == token:
            return folded
        token = folded


def name_tokens(name: str) -> list[str]:
    """The normalised tokens of ``name`` (any script), unsorted."""
    text = anyascii(unicodedata.normalize("NFKC", name)).lower()
    text = _NOT_LETTER.sub(" ", text.replace("'", "").replace("`", ""))
    return [t for t in (phonetic_fold(w) for w in text.split()) if t]


def normalise_name(name: str) -> str:
    """The one Latin form of ``name``: folded tokens, sorted, space-separated."""
    return " ".join(sorted(name_tokens(name)))


def blocking_keys(normalised: str) -> set[str]:
    """The blocking keys of a normalised name (module docstring)."""
    return {t[:BLOCK_PREFIX] for t in normalised.split() if len(t) >= MIN_TOKEN}


@dataclass(frozen=True)
class Subject:
    """Who is screened: an IIN/BIN and/or a name, with a date of birth if known."""

    iin_bin: str = ""
    name: str = ""
    birth_date: str = ""  # YYYY-MM-DD, YYYY or ""


@dataclass(frozen=True)
class Hit:
    """An entry a subject matched, and how."""

    list_name: str
    version: int
    entry: ListEntry
    outcome: str
    #: ``iin_bin``, ``name+birth_date`` or ``name``.
    basis: str
    score: float
    matched_name: str


@dataclass(frozen=True)
class Thresholds:
    match: float = DEFAULT_MATCH_THRESHOLD
    possible: float = DEFAULT_POSSIBLE_THRESHOLD


def _dates(a: str, b: str) -> str:
    """``same`` (same day), ``compatible`` (one unknown, or years equal with one of them
    a year only) or ``different``."""
    if not a or not b:
        return "compatible"
    if a == b:
        return "same" if len(a) == 10 else "compatible"
    if (len(a) == 4 or len(b) == 4) and a[:4] == b[:4]:
        return "compatible"
    return "different"


@dataclass
class ListIndex:
    """The entries of one version of one list, indexed (module docstring)."""

    list_name: str
    version: int
    entries: list[ListEntry] = field(default_factory=list)
    by_id: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: Normalised names; ``name_entry[i]`` is the entry of ``names[i]``.
    names: list[str] = field(default_factory=list)
    raw_names: list[str] = field(default_factory=list)
    name_entry: list[int] = field(default_factory=list)
    blocks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, list_name: str, version: int, entries: Iterable[ListEntry]) -> ListIndex:
        index = cls(list_name, version)
        for entry in entries:
            index.add(entry)
        return index

    def add(self, entry: ListEntry) -> None:
        e = len(self.entries)
        self.entries.append(entry)
        if entry.iin_bin:
            self.by_id[entry.iin_bin].append(e)
        for raw in entry.names:
            norm = normalise_name(raw)
            if not norm:
                continue
            n = len(self.names)
            self.names.append(norm)
            self.raw_names.append(raw)
            self.name_entry.append(e)
            for key in blocking_keys(norm):
                self.blocks[key].append(n)

    def candidates(self, normalised: str) -> list[int]:
        """Indexes into :attr:`names` sharing a blocking key with ``normalised``: its rare
        keys only when it has any (a name that shares only a frequent first name with the
        subject cannot reach the thresholds), else all of them."""
        common = max(COMMON_BLOCK, len(self.names) // 100)
        blocks = [self.blocks.get(key, ()) for key in blocking_keys(normalised)]
        rare = [b for b in blocks if len(b) <= common]
        found: set[int] = set()
        for block in rare or blocks:
            found.update(block)
        return sorted(found)

    def screen(self, subject: Subject, thresholds: Thresholds) -> list[Hit]:
        """Every entry ``subject`` matches or possibly matches, strongest first."""
        best: dict[int, Hit] = {}

        def keep(e: int, hit: Hit) -> None:
            old = best.get(e)
            if old is None or (OUTCOMES.index(hit.outcome), hit.score) > (
                    OUTCOMES.index(old.outcome), old.score):
                best[e] = hit

        if subject.iin_bin:
            for e in self.by_id.get(subject.iin_bin, ()):
                entry = self.entries[e]
                keep(e, Hit(self.list_name, self.version, entry, MATCH, "iin_bin", 100.0,
                            entry.names[0]))
        norm = normalise_name(subject.name) if subject.name else ""
        if norm:
            cand = self.candidates(norm)
            if cand:
                choices = {n: self.names[n] for n in cand}
                for _, score, n in process.extract(
                        norm, choices, scorer=fuzz.token_sort_ratio,
                        score_cutoff=thresholds.possible, limit=None):
                    e = self.name_entry[n]
                    entry = self.entries[e]
                    outcome = _name_outcome(float(score), subject.birth_date,
                                            entry.birth_date, thresholds)
                    if outcome == NO_MATCH:
                        continue
                    basis = "name+birth_date" if outcome == MATCH else "name"
                    keep(e, Hit(self.list_name, self.version, entry, outcome, basis,
                                round(float(score), 1), self.raw_names[n]))
        return sorted(best.values(),
                      key=lambda h: (-OUTCOMES.index(h.outcome), -h.score, h.entry.ref))


def _name_outcome(score: float, subject_dob: str, entry_dob: str,
                  thresholds: Thresholds) -> str:
    dates = _dates(subject_dob, entry_dob)
    if score >= thresholds.match and dates == "same":
        return MATCH
    if score >= thresholds.match:
        return POSSIBLE_MATCH
    if score >= thresholds.possible and dates != "different":
        return POSSIBLE_MATCH
    return NO_MATCH


def overall(hits: Sequence[Hit]) -> str:
    """The strongest outcome among ``hits`` (``no_match`` when there are none)."""
    return max((h.outcome for h in hits), key=OUTCOMES.index, default=NO_MATCH)


def scan_all(index: ListIndex, subject: Subject, thresholds: Thresholds) -> list[Hit]:
    """The baseline without blocking: every name of ``index`` scored (the benchmark's
    reference; the same outcome rules)."""
    norm = normalise_name(subject.name)
    hits: list[Hit] = []
    found = process.extractOne(norm, index.names, scorer=fuzz.token_sort_ratio,
                               score_cutoff=thresholds.possible)
    if found is not None:
        _, score, n = found
        entry = index.entries[index.name_entry[n]]
        outcome = _name_outcome(float(score), subject.birth_date, entry.birth_date,
                                thresholds)
        if outcome != NO_MATCH:
            hits.append(Hit(index.list_name, index.version, entry, outcome, "name",
                            float(score), index.raw_names[n]))
    return hits
