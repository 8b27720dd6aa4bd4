"""A deterministic synthetic dataset behind the embedded connector.

:func:`seed_dataset` creates the ``res_*`` tables (their own :data:`metadata`, so they
never mix with the gateway's tables) and fills them from a seeded
:class:`random.Random`: the same seed gives byte-for-byte the same rows on every run and
on every database (SQLite, PostgreSQL). Dates are relative to the fixed
:data:`REFERENCE_DATE`, never to "now".

Contents (seed :data:`DEFAULT_SEED`): ~300 persons (Kazakh citizens in families, and
foreigners), ~100 legal entities with founders and directors, and the records of every
resource. Dedicated tables hold the registers with their own structure (persons, entities,
addresses, phones, vehicles, real estate, land plots, weapons, vessels, border crossings,
pension contributions with amounts, taxpayers, court cases, notary acts, civil status,
civil service, relationship edges — one per ``(src, dst, relation)``); the long tail of
small registers (machinery, licences, customs declarations, ...) lives in ``res_record``
as JSON attributes keyed by resource number and subject identifier. Individual
entrepreneurs (by IIN) appear beside entities in resources 27, 28 and 39.

Well-known demo subjects (:func:`demo_parameters` gives the query for each resource that
returns non-empty data):

* :data:`DEMO_PERSON_IIN` — Arman Nurlanovich Serikbayev, born 1980-04-15; founder and
  director of the demo entity, and an individual entrepreneur (records in 27, 28, 39 by
  IIN); has a record in every person resource.
* :data:`DEMO_ENTITY_BIN` — "Steppe Trade Logistics" LLP, registered 2012-06; has a
  record in every entity resource; co-founded by another entity (a level-2 link).
* :data:`DEMO_FOREIGNER_IIN` — the demo person's spouse, a foreign citizen with a
  residence permit; the subject of the foreigner resources (24, 44, 45, 49).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from server.resources.catalogue import CATALOGUE, get_resource
from server.resources.identifiers import make_bin, make_iin
from siogw_api.errors import StorageError

__all__ = [
    "DATASET_VERSION",
    "DEFAULT_SEED",
    "DEMO_ENTITY_BIN",
    "DEMO_FOREIGNER_IIN",
    "DEMO_PERSON_IIN",
    "FOREIGNER_RESOURCES",
    "REFERENCE_DATE",
    "demo_parameters",
    "drop_dataset",
    "metadata",
    "seed_dataset",
]

DATASET_VERSION: Final = "2"
DEFAULT_SEED: Final = 20260101
#: All synthetic dates are at or before this day.
REFERENCE_DATE: Final = dt.date(2026, 1, 1)

DEMO_PERSON_IIN: Final = make_iin(dt.date(1980, 4, 15), "M", 4821)
DEMO_FOREIGNER_IIN: Final = make_iin(dt.date(1983, 9, 2), "F", 7305)
DEMO_ENTITY_BIN: Final = make_bin(dt.date(2012, 6, 1), 31337)
_DEMO_FATHER_IIN: Final = make_iin(dt.date(1952, 1, 20), "M", 1507)
_DEMO_MOTHER_IIN: Final = make_iin(dt.date(1955, 11, 3), "F", 1508)
_DEMO_SON_IIN: Final = make_iin(dt.date(2006, 7, 30), "M", 2210)
_DEMO_DAUGHTER_IIN: Final = make_iin(dt.date(2010, 2, 14), "F", 2211)
_DEMO_PARTNER_BIN: Final = make_bin(dt.date(2009, 3, 1), 27182)
_DEMO_PARTNER_OWNER_IIN: Final = make_iin(dt.date(1971, 12, 9), "M", 3141)

#: Resources about foreigners: their demo subject is :data:`DEMO_FOREIGNER_IIN`.
FOREIGNER_RESOURCES: Final = frozenset({24, 44, 45, 49})


def demo_parameters(resource: int) -> dict[str, str]:
    """The well-known query parameters that return non-empty data for ``resource``."""
    res = get_resource(resource)
    if resource in FOREIGNER_RESOURCES:
        return {"iin": DEMO_FOREIGNER_IIN}
    if res.parameters[0] == "bin":
        return {"bin": DEMO_ENTITY_BIN}
    return {"iin": DEMO_PERSON_IIN}


# --------------------------------------------------------------------------- schema

metadata = sa.MetaData()

_ID = 12  # IIN/BIN length


def _id_col(name: str, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.String(_ID), **kw)


def _pk() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


res_meta = sa.Table(
    "res_meta",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(64), nullable=False),
)
res_person = sa.Table(
    "res_person",
    metadata,
    _id_col("iin", primary_key=True),
    sa.Column("last_name", sa.String(64), nullable=False),
    sa.Column("first_name", sa.String(64), nullable=False),
    sa.Column("patronymic", sa.String(64)),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("birth_place", sa.String(64), nullable=False),
    sa.Column("citizenship", sa.String(3), nullable=False),
    sa.Column("nationality", sa.String(32), nullable=False),
    sa.Column("document_number", sa.String(16), nullable=False),
    sa.Column("document_issued_on", sa.Date, nullable=False),
    sa.Column("document_authority", sa.String(64), nullable=False),
)
res_entity = sa.Table(
    "res_entity",
    metadata,
    _id_col("bin", primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("legal_form", sa.String(32), nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
    sa.Column("activity_code", sa.String(8), nullable=False),
    sa.Column("activity", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("employees", sa.Integer, nullable=False),
)
res_address = sa.Table(
    "res_address",
    metadata,
    _pk(),
    _id_col("iin", index=True),
    _id_col("bin", index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("address", sa.String(160), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
)
res_phone = sa.Table(
    "res_phone",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True),
    _id_col("owner_bin", index=True),
    sa.Column("number", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("operator", sa.String(32), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("egov_mobile", sa.Boolean, nullable=False),
)
res_vehicle = sa.Table(
    "res_vehicle",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True),
    _id_col("owner_bin", index=True),
    sa.Column("plate", sa.String(10), nullable=False, index=True),
    sa.Column("vin", sa.String(17), nullable=False),
    sa.Column("make", sa.String(32), nullable=False),
    sa.Column("model", sa.String(32), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("colour", sa.String(16), nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
)
res_real_estate = sa.Table(
    "res_real_estate",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True),
    _id_col("owner_bin", index=True),
    sa.Column("cadastral_number", sa.String(24), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("address", sa.String(160), nullable=False),
    sa.Column("area_m2", sa.Float, nullable=False),
    sa.Column("acquired_on", sa.Date, nullable=False),
    sa.Column("title_basis", sa.String(32), nullable=False),
)
res_land_plot = sa.Table(
    "res_land_plot",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True),
    _id_col("owner_bin", index=True),
    sa.Column("cadastral_number", sa.String(24), nullable=False),
    sa.Column("purpose", sa.String(48), nullable=False),
    sa.Column("area_ha", sa.Float, nullable=False),
    sa.Column("region", sa.String(48), nullable=False),
    sa.Column("land_right", sa.String(32), nullable=False),
    sa.Column("acquired_on", sa.Date, nullable=False),
)
res_weapon = sa.Table(
    "res_weapon",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("model", sa.String(48), nullable=False),
    sa.Column("serial_number", sa.String(16), nullable=False),
    sa.Column("permit_number", sa.String(16), nullable=False),
    sa.Column("permit_valid_until", sa.Date, nullable=False),
)
res_vessel = sa.Table(
    "res_vessel",
    metadata,
    _pk(),
    _id_col("owner_iin", index=True),
    _id_col("owner_bin", index=True),
    sa.Column("registry", sa.String(8), nullable=False),  # river | small | sea
    sa.Column("name", sa.String(48), nullable=False),
    sa.Column("reg_number", sa.String(16), nullable=False),
    sa.Column("vessel_type", sa.String(32), nullable=False),
    sa.Column("tonnage", sa.Float, nullable=False),
    sa.Column("built_year", sa.Integer, nullable=False),
    sa.Column("home_port", sa.String(32), nullable=False),
)
res_border_crossing = sa.Table(
    "res_border_crossing",
    metadata,
    _pk(),
    _id_col("iin", index=True, nullable=False),
    sa.Column("crossed_at", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("direction", sa.String(5), nullable=False),
    sa.Column("checkpoint", sa.String(48), nullable=False),
    sa.Column("country", sa.String(3), nullable=False),
    sa.Column("document_number", sa.String(16), nullable=False),
)
res_pension_contribution = sa.Table(
    "res_pension_contribution",
    metadata,
    _pk(),
    _id_col("iin", index=True, nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    _id_col("employer_bin", nullable=False),
    sa.Column("amount_kzt", sa.Integer, nullable=False),
    sa.Column("paid_on", sa.Date, nullable=False),
)
res_taxpayer = sa.Table(
    "res_taxpayer",
    metadata,
    _pk(),
    _id_col("iin", index=True),
    _id_col("bin", index=True),
    sa.Column("tax_office", sa.String(4), nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
    sa.Column("regime", sa.String(32), nullable=False),
    sa.Column("vat_payer", sa.Boolean, nullable=False),
)
res_court_case = sa.Table(
    "res_court_case",
    metadata,
    _pk(),
    _id_col("iin", index=True),
    _id_col("bin", index=True),
    sa.Column("case_number", sa.String(32), nullable=False),
    sa.Column("court", sa.String(80), nullable=False),
    sa.Column("category", sa.String(24), nullable=False),
    sa.Column("party_role", sa.String(24), nullable=False),
    sa.Column("filed_on", sa.Date, nullable=False),
    sa.Column("judge", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(64)),
    sa.Column("decided_on", sa.Date),
    sa.Column("hearings", sa.Integer, nullable=False),
)
res_notary_act = sa.Table(
    "res_notary_act",
    metadata,
    _pk(),
    _id_col("iin", index=True),
    _id_col("bin", index=True),
    sa.Column("act_type", sa.String(48), nullable=False),
    sa.Column("notary", sa.String(64), nullable=False),
    sa.Column("performed_on", sa.Date, nullable=False),
    sa.Column("registry_number", sa.String(16), nullable=False),
)
res_civil_status = sa.Table(
    "res_civil_status",
    metadata,
    _pk(),
    _id_col("iin", index=True, nullable=False),
    sa.Column("act_type", sa.String(16), nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
    sa.Column("registry_office", sa.String(64), nullable=False),
    sa.Column("record_number", sa.String(16), nullable=False),
    _id_col("other_iin"),
)
res_civil_service = sa.Table(
    "res_civil_service",
    metadata,
    _pk(),
    _id_col("iin", index=True, nullable=False),
    sa.Column("agency", sa.String(96), nullable=False),
    sa.Column("position", sa.String(64), nullable=False),
    sa.Column("category", sa.String(8), nullable=False),
    sa.Column("started_on", sa.Date, nullable=False),
    sa.Column("ended_on", sa.Date),
)
#: Relationship edges: ``src`` is ``relation`` of ``dst`` (founder, director, spouse, parent).
res_link = sa.Table(
    "res_link",
    metadata,
    _pk(),
    _id_col("src", nullable=False, index=True),
    _id_col("dst", nullable=False, index=True),
    sa.Column("relation", sa.String(16), nullable=False),
    sa.Column("share_percent", sa.Float),
    sa.Column("since", sa.Date, nullable=False),
    # one edge per (src, dst, relation): a duplicate would show up as a duplicate path
    sa.UniqueConstraint("src", "dst", "relation", name="uq_res_link_edge"),
)
#: The long tail of small registers: one JSON object per record.
res_record = sa.Table(
    "res_record",
    metadata,
    _pk(),
    sa.Column("resource", sa.Integer, nullable=False),
    _id_col("subject", nullable=False),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Index("ix_res_record_resource_subject", "resource", "subject"),
)

# --------------------------------------------------------------------------- vocabularies

_MALE = (
    "Arman Nurlan Yerlan Daniyar Askar Bauyrzhan Timur Marat Serik Kanat Aidos Azamat "
    "Ruslan Dauren Yerzhan Almas Zhandos Bolat Sanzhar Ilyas Mukhtar Galym Adil Nurbol"
).split()
_FEMALE = (
    "Aigerim Dana Aliya Gulnara Saule Madina Aruzhan Zhanna Asel Dinara Kamila Aizhan "
    "Laura Botagoz Indira Ainur Symbat Tomiris Akmaral Zarina Gaukhar Meruyert"
).split()
_SURNAMES = (
    "Serikbayev Nurlanov Akhmetov Zhakupov Suleimenov Omarov Kassymov Abenov Baimukhanov "
    "Dzhaksybekov Ermekov Ibraimov Karimov Mukhamedzhanov Nurpeisov Ospanov Rakhimov "
    "Sadykov Tulegenov Utebayev Zhunusov Iskakov Bekturov Amanov Kenzhebayev Temirov"
).split()
_FOREIGN = (
    ("RUS", "Russian", ("Ivan", "Sergei", "Dmitry"), ("Olga", "Elena", "Natalia"),
     ("Ivanov", "Petrov", "Smirnov", "Volkov")),
    ("UZB", "Uzbek", ("Rustam", "Bakhtiyor", "Jasur"), ("Dilnoza", "Malika", "Nigora"),
     ("Karimov", "Yusupov", "Rashidov")),
    ("CHN", "Chinese", ("Wei", "Jun", "Hao"), ("Li", "Mei", "Xiu"), ("Wang", "Zhang", "Liu")),
    ("TUR", "Turkish", ("Mehmet", "Emre", "Burak"), ("Ayse", "Elif", "Zeynep"),
     ("Yilmaz", "Kaya", "Demir")),
    ("KGZ", "Kyrgyz", ("Azamat", "Bakyt", "Nurlan"), ("Aida", "Cholpon", "Gulzat"),
     ("Sadyrov", "Asanov", "Osmonov")),
)
_CITIES = (
    "Astana", "Almaty", "Shymkent", "Karaganda", "Aktobe", "Pavlodar", "Atyrau",
    "Kostanay", "Oral", "Taraz", "Oskemen", "Aktau",
)
_STREETS = (
    "Abay ave.", "Dostyk st.", "Kabanbay Batyr ave.", "Tole Bi st.", "Respublika ave.",
    "Satpayev st.", "Seifullin st.", "Bukhar Zhyrau blvd.", "Turan ave.", "Auezov st.",
)
_ACTIVITIES = (
    ("46900", "Non-specialised wholesale trade"),
    ("49410", "Freight transport by road"),
    ("41201", "Construction of residential buildings"),
    ("62010", "Computer programming"),
    ("68201", "Renting of own real estate"),
    ("01110", "Growing of cereals"),
    ("06100", "Extraction of crude petroleum"),
    ("07290", "Mining of non-ferrous metal ores"),
    ("64190", "Other monetary intermediation"),
    ("52291", "Freight forwarding"),
)
_NAME_WORDS = (
    "Altyn Steppe Caspian Nomad Tengri Sary-Arka Zhetysu Baiterek Korgan Irtysh Ulytau "
    "Kazyna Aral Kokshe Saryarka Silk Way Eurasia Bereke Samruk Shanyrak"
).split()
_NAME_TAILS = ("Trade", "Invest", "Logistics", "Construction", "Agro", "Oil Service",
               "Mining", "Holding", "Development", "Technologies")
_COUNTRIES = ("TUR", "ARE", "RUS", "CHN", "UZB", "KGZ", "GEO", "THA", "DEU", "KOR")
_CHECKPOINTS = ("Astana airport (NQZ)", "Almaty airport (ALA)", "Khorgos", "Zhibek Zholy",
                "Kairak", "Aktau seaport", "Shymkent airport (CIT)")
_OPERATORS = ("Beeline", "Kcell", "Tele2", "Activ", "Altel")
_CAR_MAKES = (("Toyota", "Camry"), ("Toyota", "Land Cruiser 200"), ("Hyundai", "Tucson"),
              ("Lada", "Granta"), ("Kia", "Sportage"), ("Chevrolet", "Cobalt"),
              ("Lexus", "LX 570"), ("Volkswagen", "Polo"), ("KAMAZ", "5490"), ("MAN", "TGX"))
_COLOURS = ("white", "black", "silver", "grey", "blue", "red")
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_PLATE_LETTERS = "ABCDEFHKLMNOPRSTUXYZ"

_Gen = Callable[[random.Random, str], tuple[dt.date, dict[str, Any]]]


def _d(rng: random.Random, start: dt.date, end: dt.date = REFERENCE_DATE) -> dt.date:
    span = (end - start).days
    return start + dt.timedelta(days=rng.randrange(max(span, 1)))


def _num(rng: random.Random, width: int) -> str:
    return f"{rng.randrange(10**width):0{width}d}"


def _fem(surname: str) -> str:
    return surname + "a" if surname.endswith(("ov", "ev", "in")) else surname


def _addr(rng: random.Random, city: str | None = None) -> str:
    city = city or rng.choice(_CITIES)
    return f"{city}, {rng.choice(_STREETS)} {rng.randint(1, 180)}, apt. {rng.randint(1, 240)}"


def _plate(rng: random.Random) -> str:
    letters = "".join(rng.choice(_PLATE_LETTERS) for _ in range(3))
    return f"{rng.randint(100, 999)}{letters}{rng.choice(('01', '02', '05', '09', '17'))}"


def _cadastre(rng: random.Random) -> str:
    return f"{rng.randint(1, 21):02d}-{rng.randint(100, 399)}-{_num(rng, 3)}-{_num(rng, 3)}"


# --------------------------------------------------------------------------- generic registers
# Each generator returns (recorded_on, attributes) for one record about ``subject``.


def _g7(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2005, 1, 1))
    kind = rng.choice(("tank car", "hopper car", "gondola car", "flat car", "box car"))
    return d, {"wagon_number": _num(rng, 8), "wagon_type": kind,
               "built_year": rng.randint(1995, 2022), "depot": rng.choice(_CITIES)}


def _g10(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    kind, model = rng.choice((("tractor", "Belarus MTZ-82"), ("tractor", "John Deere 8R"),
                              ("combine harvester", "CLAAS Tucano 570"),
                              ("combine harvester", "Rostselmash Acros 595"),
                              ("seeder", "Amazone Cirrus 6003")))
    return _d(rng, dt.date(2008, 1, 1)), {"machine_type": kind, "model": model,
                                           "reg_number": f"{_num(rng, 4)}AG{_num(rng, 2)}",
                                           "built_year": rng.randint(2000, 2024)}


def _g12(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2010, 1, 1))
    return d, {"group": rng.choice((1, 2, 3)), "cause": rng.choice(("general illness",
               "work injury", "since childhood")), "established_on": d.isoformat(),
               "review_on": (d + dt.timedelta(days=730)).isoformat()}


def _g13(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    svc = rng.choice(("Issue of an identity card", "Registration at place of residence",
                      "Certificate of no criminal record", "Registration of a vehicle",
                      "Issue of a passport", "Registration of a land plot right"))
    return _d(rng, dt.date(2018, 1, 1)), {"service": svc, "centre": f"PSC No. {rng.randint(1, 12)}"
                                           f", {rng.choice(_CITIES)}", "status": "provided"}


def _g14(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    kind, art = rng.choice((("administrative offence", "CAO art. 610"),
                            ("administrative offence", "CAO art. 592"),
                            ("criminal record (expunged)", "CC art. 190"),
                            ("criminal prosecution (terminated)", "CC art. 218")))
    city = rng.choice(_CITIES)
    return _d(rng, dt.date(2005, 1, 1)), {"record_type": kind, "article": art,
                                           "authority": f"Police department of {city}"}


def _g15(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    year = rng.randint(2021, 2025)
    return dt.date(year, 12, 31), {"year": year, "employees": rng.randint(3, 800),
                                   "revenue_kzt": rng.randint(5, 9000) * 1_000_000,
                                   "size_class": rng.choice(("small", "medium", "large")),
                                   "region": rng.choice(_CITIES)}


def _g26(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2012, 1, 1))
    kind = rng.choice(("Freight transport", "Construction and installation works",
                       "Wholesale of alcohol", "Pharmaceutical activity",
                       "Exchange transactions with foreign currency", "Subsoil exploration"))
    return d, {"licence_number": f"{d.year % 100:02d}{_num(rng, 6)}", "activity": kind,
               "issuer": "Committee of the Ministry of Industry", "issued_on": d.isoformat(),
               "status": rng.choice(("valid", "valid", "suspended"))}


def _g27(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2019, 1, 1))
    return d, {"lot_number": f"{_num(rng, 7)}-ZTsP{rng.randint(1, 3)}",
               "subject": rng.choice(("Supply of diesel fuel", "Road repair works",
                                      "Supply of office equipment", "Freight forwarding")),
               "method": rng.choice(("open tender", "request for quotations", "single source")),
               "contract_amount_kzt": rng.randint(2, 900) * 1_000_000 + rng.randint(0, 999_999),
               "contract_date": d.isoformat()}


def _g28(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    year = rng.randint(2020, 2025)
    return dt.date(year, 12, 31), {"year": year, "exports_usd": rng.randint(0, 5_000_000),
                                   "imports_usd": rng.randint(10_000, 9_000_000),
                                   "partner_countries": sorted(rng.sample(_COUNTRIES, 3)),
                                   "main_hs_codes": sorted(rng.sample(
                                       ("2710", "8429", "8703", "7208", "3004", "8517"), 2))}


def _g29(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2019, 1, 1))
    return d, {"declaration_number": f"PTD/{d:%Y%m%d}/{_num(rng, 6)}",
               "checkpoint": rng.choice(_CHECKPOINTS),
               "goods": rng.choice(("cash over USD 10,000", "jewellery", "electronics",
                                    "cultural values")),
               "declared_value_usd": rng.randint(1, 90) * 1000}


def _g30(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2015, 1, 1))
    make, model = rng.choice(_CAR_MAKES)
    return d, {"declaration_number": f"{_num(rng, 5)}/{d:%d%m%y}/{_num(rng, 7)}",
               "vin": "".join(rng.choice(_VIN_CHARS) for _ in range(17)), "make": make,
               "model": model, "origin_country": rng.choice(("DEU", "JPN", "KOR", "ARE", "USA")),
               "customs_value_kzt": rng.randint(3, 60) * 1_000_000,
               "duties_paid_kzt": rng.randint(300, 9000) * 1000}


def _foreign_name(rng: random.Random) -> tuple[str, str]:
    cit, _nat, male, _female, surnames = rng.choice(_FOREIGN)
    return f"{rng.choice(male)} {rng.choice(surnames)}", cit


def _g31(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2020, 1, 1))
    name, cit = _foreign_name(rng)
    return d, {"worker_name": name, "citizenship": cit, "permit_number": f"WP{_num(rng, 8)}",
               "position": rng.choice(("engineer", "welder", "manager", "driller", "chef")),
               "valid_until": (d + dt.timedelta(days=365)).isoformat()}


def _g32(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2000, 1, 1))
    return d, {"contract_number": f"{rng.randint(100, 5999)}-UVS", "field": rng.choice(
        ("Kumkol North", "Aksai", "Zhanatalap", "Karatobe", "Uzen East")),
        "region": rng.choice(("Atyrau", "Mangystau", "Kyzylorda", "Aktobe")),
        "stage": rng.choice(("exploration", "production")), "signed_on": d.isoformat(),
        "term_years": rng.choice((6, 25, 30))}


def _g33(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2005, 1, 1))
    return d, {"licence_number": f"{rng.randint(100, 2999)}-EL", "mineral": rng.choice(
        ("copper", "gold", "coal", "groundwater", "limestone", "tungsten")),
        "area_km2": round(rng.uniform(0.5, 120), 1), "region": rng.choice(
        ("Karaganda", "East Kazakhstan", "Kostanay", "Ulytau")), "signed_on": d.isoformat()}


def _g34(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2022, 1, 1))
    code, name = rng.choice((("101202", "Corporate income tax"), ("105101", "VAT"),
                             ("104101", "Social tax"), ("101201", "Individual income tax"),
                             ("104402", "Vehicle tax"), ("104302", "Land tax")))
    return d, {"budget_code": code, "tax": name, "period": f"{d.year}-Q{(d.month - 1) // 3 + 1}",
               "paid_kzt": rng.randint(10, 9000) * 1000 + rng.randint(0, 999),
               "paid_on": d.isoformat()}


def _g35(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2021, 1, 1))
    a, b = rng.sample(_CITIES, 2)
    return d, {"train": f"{rng.randint(1, 399):03d}{rng.choice('KTCH')}", "from": a, "to": b,
               "departure": f"{d.isoformat()}T{rng.randint(0, 23):02d}:{rng.choice(('05', '35'))}"
                            ":00+05:00", "car": rng.randint(1, 18), "seat": rng.randint(1, 54)}


def _g37(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2016, 1, 1))
    return d, {"search_case": f"{_num(rng, 15)}", "initiator": f"Investigations department, "
               f"{rng.choice(_CITIES)}", "article": rng.choice(("CC art. 189", "CC art. 218",
                                                               "CC art. 190")),
               "search_started_on": d.isoformat(),
               "status": rng.choice(("wanted", "search terminated"))}


def _g38(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2010, 1, 1))
    return d, {"missing_since": d.isoformat(), "reported_by": "relative",
               "authority": f"Police department of {rng.choice(_CITIES)}",
               "status": "found",
               "found_on": (d + dt.timedelta(days=rng.randint(1, 30))).isoformat()}


def _g39(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2018, 1, 1))
    return d, {"included_on": d.isoformat(), "reason": rng.choice(
        ("failure to perform a procurement contract", "evasion of contract conclusion",
         "court decision on unscrupulous supplier")),
        "customer": f"Akimat of {rng.choice(_CITIES)}",
        "excluded_on": (d + dt.timedelta(days=730)).isoformat()}


def _g42(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2022, 1, 1))
    return d, {"tracking_number": f"R{rng.choice('ABCEU')}{_num(rng, 9)}KZ",
               "direction": rng.choice(("incoming", "outgoing")),
               "country": rng.choice(_COUNTRIES), "posted_on": d.isoformat(),
               "weight_g": rng.randint(20, 20000), "status": "delivered"}


def _g43(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2005, 1, 1))
    return d, {"dispensary": rng.choice(("narcological", "tuberculosis", "cardiological",
                                         "endocrinological")),
               "registered_on": d.isoformat(), "status": rng.choice(("active", "removed"))}


def _g44(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2019, 1, 1))
    return d, {"host_address": _addr(rng), "purpose": rng.choice(("private", "business",
                                                                  "tourism", "work")),
               "registered_from": d.isoformat(),
               "registered_until": (d + dt.timedelta(days=90)).isoformat()}


def _g45(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2010, 1, 1))
    return d, {"permit_number": f"RP{_num(rng, 7)}", "issued_on": d.isoformat(),
               "valid_until": (d + dt.timedelta(days=3650)).isoformat(),
               "authority": "Migration service", "status": "valid"}


def _g46(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2019, 1, 1))
    name, cit = _foreign_name(rng)
    return d, {"worker_name": name, "citizenship": cit, "permit_number": f"WPH{_num(rng, 7)}",
               "work": rng.choice(("housekeeper", "nanny", "gardener", "driver")),
               "valid_until": (d + dt.timedelta(days=365)).isoformat()}


def _g47(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2012, 1, 1))
    return d, {"destination_country": rng.choice(("DEU", "RUS", "USA", "CAN", "ISR")),
               "applied_on": d.isoformat(), "status": rng.choice(("issued", "withdrawn"))}


def _g48(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2018, 1, 1))
    name, cit = _foreign_name(rng)
    return d, {"invitation_number": f"INV{_num(rng, 8)}", "invitee_name": name,
               "invitee_citizenship": cit, "visa_type": rng.choice(("private", "guest")),
               "entry_from": d.isoformat(),
               "entry_until": (d + dt.timedelta(days=30)).isoformat()}


def _g49(rng: random.Random, s: str) -> tuple[dt.date, dict[str, Any]]:
    d = _d(rng, dt.date(2015, 1, 1))
    return d, {"procedure": rng.choice(("acquisition", "acquisition", "renunciation")),
               "application_date": d.isoformat(), "previous_citizenship": rng.choice(
                   ("RUS", "UZB", "KGZ", "CHN")), "status": rng.choice(("granted", "pending"))}


#: Generic registers: resource → (generator, subject kind, probability per subject).
_GENERIC: Mapping[int, tuple[_Gen, Literal["person", "foreigner", "entity", "both"], float]] = {
    7: (_g7, "entity", 0.05), 10: (_g10, "both", 0.1), 12: (_g12, "person", 0.05),
    13: (_g13, "person", 0.4), 14: (_g14, "person", 0.1), 15: (_g15, "entity", 0.8),
    26: (_g26, "both", 0.2), 27: (_g27, "entity", 0.3), 28: (_g28, "entity", 0.2),
    29: (_g29, "person", 0.05), 30: (_g30, "both", 0.1), 31: (_g31, "entity", 0.15),
    32: (_g32, "entity", 0.05), 33: (_g33, "entity", 0.05), 34: (_g34, "both", 0.5),
    35: (_g35, "person", 0.3), 37: (_g37, "person", 0.02), 38: (_g38, "person", 0.02),
    39: (_g39, "entity", 0.05), 42: (_g42, "person", 0.2), 43: (_g43, "person", 0.05),
    44: (_g44, "foreigner", 0.6), 45: (_g45, "foreigner", 0.4), 46: (_g46, "person", 0.03),
    47: (_g47, "person", 0.02), 48: (_g48, "person", 0.05), 49: (_g49, "foreigner", 0.3),
}
assert set(_GENERIC) <= set(CATALOGUE)
#: Registers that also list individual entrepreneurs by IIN: resource → probability.
_ENTREPRENEUR_RESOURCES: Mapping[int, float] = {27: 0.5, 28: 0.3, 39: 0.1}

# --------------------------------------------------------------------------- generation


class _Builder:
    """Accumulates rows for every table from one seeded RNG."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in metadata.sorted_tables}
        self.persons: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.demo: set[str] = {DEMO_PERSON_IIN, DEMO_ENTITY_BIN, DEMO_FOREIGNER_IIN}

    def add(self, table: sa.Table, **row: Any) -> None:
        self.rows[table.name].append(row)

    # -- subjects

    def person(self, birth: dt.date, sex: Literal["M", "F"], *, iin: str | None = None,
               surname: str | None = None, first: str | None = None,
               father: str | None = None, foreign: int | None = None) -> dict[str, Any]:
        rng = self.rng
        if iin is None:
            iin = make_iin(birth, sex, rng.randrange(10000))
            while iin in self.used:
                iin = make_iin(birth, sex, rng.randrange(10000))
        self.used.add(iin)
        if foreign is not None:
            cit, nat, male, female, surnames = _FOREIGN[foreign]
            first = first or rng.choice(male if sex == "M" else female)
            last = surname or rng.choice(surnames)
            patronymic = None
            place = {"RUS": "Omsk", "UZB": "Tashkent", "CHN": "Urumqi", "TUR": "Ankara",
                     "KGZ": "Bishkek"}[cit]
        else:
            cit, nat = "KAZ", "Kazakh"
            first = first or rng.choice(_MALE if sex == "M" else _FEMALE)
            last = surname or rng.choice(_SURNAMES)
            father = father or rng.choice(_MALE)
            patronymic = father + ("ovich" if sex == "M" else "ovna")
            place = rng.choice(_CITIES)
        if sex == "F":
            last = _fem(last)
        issued = max(birth + dt.timedelta(days=16 * 365 + 30), dt.date(2012, 1, 1))
        issued = min(issued + dt.timedelta(days=rng.randrange(1500)), REFERENCE_DATE)
        row = {"iin": iin, "last_name": last, "first_name": first, "patronymic": patronymic,
               "sex": sex, "birth_date": birth, "birth_place": place, "citizenship": cit,
               "nationality": nat, "document_number": f"N{_num(rng, 8)}",
               "document_issued_on": issued,
               "document_authority": "Ministry of Internal Affairs" if foreign is None
               else "Migration service (residence permit)"}
        self.add(res_person, **row)
        self.persons.append(row)
        city = rng.choice(_CITIES)
        self.add(res_address, iin=iin, bin=None, kind="registration", address=_addr(rng, city),
                 since=_d(rng, max(birth, dt.date(2000, 1, 1))))
        if rng.random() < 0.4 or iin in self.demo:
            self.add(res_address, iin=iin, bin=None, kind="residence", address=_addr(rng, city),
                     since=_d(rng, dt.date(2015, 1, 1)))
        self.add(res_civil_status, iin=iin, act_type="birth",
                 registered_on=birth + dt.timedelta(days=rng.randint(3, 30)),
                 registry_office=f"Civil registry office of {place}",
                 record_number=_num(rng, 6), other_iin=None)
        return row

    def entity(self, registered: dt.date, *, bin_: str | None = None,
               name: str | None = None, activity: int | None = None,
               status: str | None = None) -> dict[str, Any]:
        rng = self.rng
        if bin_ is None:
            bin_ = make_bin(registered, rng.randrange(100000))
            while bin_ in self.used:
                bin_ = make_bin(registered, rng.randrange(100000))
        self.used.add(bin_)
        code, act = _ACTIVITIES[rng.randrange(len(_ACTIVITIES)) if activity is None else activity]
        row = {"bin": bin_, "name": name or f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_TAILS)}",
               "legal_form": "LLP", "registered_on": registered, "activity_code": code,
               "activity": act, "status": "active" if rng.random() < 0.9 else "liquidated",
               "employees": rng.randint(1, 900)}
        if status is not None:
            row["status"] = status
        self.add(res_entity, **row)
        self.entities.append(row)
        self.add(res_address, iin=None, bin=bin_, kind="legal", address=_addr(rng),
                 since=registered)
        return row

    def link(self, src: str, dst: str, relation: str, since: dt.date,
             share: float | None = None) -> None:
        self.add(res_link, src=src, dst=dst, relation=relation, share_percent=share, since=since)

    def marry(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        rng = self.rng
        when = max(a["birth_date"], b["birth_date"]) + dt.timedelta(days=rng.randint(20, 30) * 365)
        when = min(when, REFERENCE_DATE)
        self.link(a["iin"], b["iin"], "spouse", when)
        number = _num(rng, 6)
        for x, y in ((a, b), (b, a)):
            self.add(res_civil_status, iin=x["iin"], act_type="marriage", registered_on=when,
                     registry_office=f"Civil registry office of {rng.choice(_CITIES)}",
                     record_number=number, other_iin=y["iin"])

    # -- the world

    def build(self) -> None:
        self._demo_family()
        self._population(target=300)
        self._entities(target=100)
        self._registers()

    def _demo_family(self) -> None:
        father = self.person(dt.date(1952, 1, 20), "M", iin=_DEMO_FATHER_IIN,
                             surname="Serikbayev", first="Nurlan", father="Serik")
        mother = self.person(dt.date(1955, 11, 3), "F", iin=_DEMO_MOTHER_IIN,
                             surname="Akhmetov", first="Gulnara")
        demo = self.person(dt.date(1980, 4, 15), "M", iin=DEMO_PERSON_IIN,
                           surname="Serikbayev", first="Arman", father="Nurlan")
        wife = self.person(dt.date(1983, 9, 2), "F", iin=DEMO_FOREIGNER_IIN,
                           surname="Volkov", first="Elena", foreign=0)
        son = self.person(dt.date(2006, 7, 30), "M", iin=_DEMO_SON_IIN,
                          surname="Serikbayev", first="Timur", father="Arman")
        daughter = self.person(dt.date(2010, 2, 14), "F", iin=_DEMO_DAUGHTER_IIN,
                               surname="Serikbayev", first="Aruzhan", father="Arman")
        self.marry(father, mother)
        self.marry(demo, wife)
        for p in (father, mother):
            self.link(p["iin"], demo["iin"], "parent", demo["birth_date"])
        for p in (demo, wife):
            for c in (son, daughter):
                self.link(p["iin"], c["iin"], "parent", c["birth_date"])
        partner_owner = self.person(dt.date(1971, 12, 9), "M", iin=_DEMO_PARTNER_OWNER_IIN,
                                    surname="Omarov", first="Bolat")
        entity = self.entity(dt.date(2012, 6, 20), bin_=DEMO_ENTITY_BIN,
                             name="Steppe Trade Logistics", activity=1, status="active")
        partner = self.entity(dt.date(2009, 3, 11), bin_=_DEMO_PARTNER_BIN,
                              name="Altyn Invest", activity=8, status="active")
        self.link(demo["iin"], entity["bin"], "founder", entity["registered_on"], 60.0)
        self.link(partner["bin"], entity["bin"], "founder", entity["registered_on"], 40.0)
        self.link(demo["iin"], entity["bin"], "director", entity["registered_on"])
        self.link(partner_owner["iin"], partner["bin"], "founder", partner["registered_on"], 100.0)
        self.link(partner_owner["iin"], partner["bin"], "director", partner["registered_on"])

    def _population(self, target: int) -> None:
        rng = self.rng
        while len(self.persons) < target:
            if rng.random() < 0.12:  # a single foreign resident
                sex: Literal["M", "F"] = rng.choice(("M", "F"))
                self.person(_d(rng, dt.date(1960, 1, 1), dt.date(2000, 1, 1)), sex,
                            foreign=rng.randrange(len(_FOREIGN)))
                continue
            surname = rng.choice(_SURNAMES)
            hb = _d(rng, dt.date(1950, 1, 1), dt.date(1998, 1, 1))
            husband = self.person(hb, "M", surname=surname)
            wife = self.person(hb + dt.timedelta(days=rng.randint(-1500, 2500)), "F",
                               surname=surname)
            self.marry(husband, wife)
            first_child = hb + dt.timedelta(days=rng.randint(22, 32) * 365)
            for k in range(rng.choice((0, 1, 2, 2, 3))):
                born = first_child + dt.timedelta(days=k * rng.randint(500, 1500))
                if born >= REFERENCE_DATE:
                    break
                sex = rng.choice(("M", "F"))
                child = self.person(born, sex, surname=surname, father=husband["first_name"])
                for p in (husband, wife):
                    self.link(p["iin"], child["iin"], "parent", born)

    def _entities(self, target: int) -> None:
        rng = self.rng
        adults = [p for p in self.persons
                  if p["birth_date"] < dt.date(2003, 1, 1) and p["iin"] not in self.demo]
        while len(self.entities) < target:
            e = self.entity(_d(rng, dt.date(2000, 1, 1), dt.date(2025, 1, 1)))
            n = rng.choice((1, 1, 2, 3))
            founders: list[str] = []
            if len(self.entities) > 5 and rng.random() < 0.2:
                parent = rng.choice(self.entities[:-1])["bin"]
                founders.append(parent)
            founders += [p["iin"] for p in rng.sample(adults, n)]
            shares = [round(100 / len(founders), 2)] * len(founders)
            for f, sh in zip(founders, shares, strict=True):
                self.link(f, e["bin"], "founder", e["registered_on"], sh)
            director = founders[-1] if rng.random() < 0.6 else rng.choice(adults)["iin"]
            self.link(director, e["bin"], "director", e["registered_on"])

    def _registers(self) -> None:
        rng = self.rng
        ref = REFERENCE_DATE
        citizens = [p for p in self.persons if p["citizenship"] == "KAZ"]
        foreigners = [p for p in self.persons if p["citizenship"] != "KAZ"]
        adults = [p for p in self.persons if (ref - p["birth_date"]).days >= 18 * 365]
        employers = [e for e in self.entities if e["status"] == "active"]
        entities = self.entities

        def chance(subject: str, p: float) -> bool:
            # the demo subjects always get records; the draw happens anyway so that the
            # random stream does not depend on which subjects are demo ones
            return rng.random() < p or subject in self.demo

        for p in adults:
            iin = p["iin"]
            prefix = rng.choice(("01", "02", "05", "07", "47", "71", "75", "77"))
            mobile = f"+77{prefix}{_num(rng, 7)}"
            self.add(res_phone, owner_iin=iin, owner_bin=None, number=mobile, kind="mobile",
                     operator=rng.choice(_OPERATORS), since=_d(rng, dt.date(2010, 1, 1)),
                     egov_mobile=rng.random() < 0.7 or iin in self.demo)
            if chance(iin, 0.3):
                self.add(res_phone, owner_iin=iin, owner_bin=None, number="+77172" + _num(rng, 6),
                         kind="landline", operator="Kazakhtelecom",
                         since=_d(rng, dt.date(2000, 1, 1)), egov_mobile=False)
            for _ in range(rng.randint(1, 2) if chance(iin, 0.35) else 0):
                self._vehicle(iin, None)
            for _ in range(rng.randint(1, 2) if chance(iin, 0.5) else 0):
                self._real_estate(iin, None)
            if chance(iin, 0.15):
                self._land(iin, None)
            if p["sex"] == "M" and chance(iin, 0.05):
                self.add(res_weapon, owner_iin=iin, kind=rng.choice(("hunting rifle",
                         "smoothbore shotgun", "gas pistol")), model=rng.choice((
                         "Saiga-12", "IZh-27", "Benelli M2", "Blaser R8")),
                         serial_number=_num(rng, 8), permit_number=f"{_num(rng, 3)}-{_num(rng, 6)}",
                         permit_valid_until=_d(rng, dt.date(2026, 1, 2), dt.date(2030, 1, 1)))
            if chance(iin, 0.04):
                self._vessel(iin, None, "small")
            if iin == DEMO_PERSON_IIN:
                self._vessel(iin, None, "sea")
                self._vessel(iin, None, "river")
            if chance(iin, 0.08):
                self._court_case(iin, None)
            if chance(iin, 0.25):
                self._notary(iin, None)
            crossings = rng.randint(1, 4) if chance(iin, 0.4) else 0
            for _ in range(crossings):
                self._trip(p)
            if p["citizenship"] == "KAZ":
                self.add(res_taxpayer, iin=iin, bin=None, tax_office=f"{rng.randint(1, 62):02d}"
                         f"{rng.randint(1, 99):02d}", registered_on=_d(rng, dt.date(1999, 1, 1)),
                         regime=rng.choice(("individual", "individual", "individual entrepreneur")),
                         vat_payer=False)
                if (ref - p["birth_date"]).days < 63 * 365 and chance(iin, 0.75):
                    employer = DEMO_ENTITY_BIN if iin == DEMO_PERSON_IIN else rng.choice(
                        employers)["bin"]
                    self._pension(iin, employer)
                if chance(iin, 0.07):
                    self._civil_service(iin, p["birth_date"])

        for e in entities:
            b = e["bin"]
            if chance(b, 0.6):
                self.add(res_phone, owner_iin=None, owner_bin=b, number="+77172" + _num(rng, 6),
                         kind="landline", operator="Kazakhtelecom", since=e["registered_on"],
                         egov_mobile=False)
            for _ in range(rng.randint(1, 4) if chance(b, 0.5) else 0):
                self._vehicle(None, b)
            for _ in range(rng.randint(1, 3) if chance(b, 0.4) else 0):
                self._real_estate(None, b)
            if chance(b, 0.3):
                self._land(None, b)
            if chance(b, 0.05):
                self._vessel(None, b, "river")
            if chance(b, 0.03):
                self._vessel(None, b, "sea")
            if chance(b, 0.2):
                self._court_case(None, b)
            if chance(b, 0.2):
                self._notary(None, b)
            self.add(res_taxpayer, iin=None, bin=b, tax_office=f"{rng.randint(1, 62):02d}"
                     f"{rng.randint(1, 99):02d}", registered_on=e["registered_on"],
                     regime=rng.choice(("general", "simplified declaration", "general")),
                     vat_payer=rng.random() < 0.6 or b in self.demo)

        for number, (gen, kind, prob) in sorted(_GENERIC.items()):
            subjects: list[str]
            if kind == "person":
                subjects = [p["iin"] for p in citizens]
            elif kind == "foreigner":
                subjects = [p["iin"] for p in foreigners]
            elif kind == "entity":
                subjects = [e["bin"] for e in entities]
            else:
                subjects = [p["iin"] for p in adults] + [e["bin"] for e in entities]
            for s in subjects:
                if not chance(s, prob):
                    continue
                for _ in range(rng.randint(1, 3)):
                    when, attrs = gen(rng, s)
                    self.add(res_record, resource=number, subject=s, recorded_on=when,
                             attributes=attrs)

        # Individual entrepreneurs, identified by their IIN, in the procurement and foreign
        # trade registers (27, 28, 39). Drawn last, so that the rows above do not change.
        entrepreneurs = [p["iin"] for p in adults
                         if p["citizenship"] == "KAZ" and chance(p["iin"], 0.1)]
        for number, prob in _ENTREPRENEUR_RESOURCES.items():
            gen = _GENERIC[number][0]
            for s in entrepreneurs:
                if chance(s, prob):
                    for _ in range(rng.randint(1, 2)):
                        when, attrs = gen(rng, s)
                        self.add(res_record, resource=number, subject=s, recorded_on=when,
                                 attributes=attrs)

    def _vehicle(self, iin: str | None, bin_: str | None) -> None:
        rng = self.rng
        make, model = rng.choice(_CAR_MAKES)
        self.add(res_vehicle, owner_iin=iin, owner_bin=bin_, plate=_plate(rng),
                 vin="".join(rng.choice(_VIN_CHARS) for _ in range(17)), make=make, model=model,
                 year=rng.randint(2005, 2025), colour=rng.choice(_COLOURS),
                 registered_on=_d(rng, dt.date(2012, 1, 1)))

    def _real_estate(self, iin: str | None, bin_: str | None) -> None:
        rng = self.rng
        kind = rng.choice(("apartment", "apartment", "house", "garage") if iin else
                          ("warehouse", "office", "retail premises", "production building"))
        self.add(res_real_estate, owner_iin=iin, owner_bin=bin_, cadastral_number=_cadastre(rng),
                 kind=kind, address=_addr(rng), area_m2=round(rng.uniform(18, 1500 if bin_ else
                                                                          260), 1),
                 acquired_on=_d(rng, dt.date(2003, 1, 1)),
                 title_basis=rng.choice(("purchase agreement", "gift agreement", "inheritance",
                                         "equity construction")))

    def _land(self, iin: str | None, bin_: str | None) -> None:
        rng = self.rng
        self.add(res_land_plot, owner_iin=iin, owner_bin=bin_, cadastral_number=_cadastre(rng),
                 purpose=rng.choice(("individual housing", "agricultural production",
                                     "commercial construction", "dacha farming")),
                 area_ha=round(rng.uniform(0.06, 900), 2),
                 region=rng.choice(("Akmola", "Almaty", "Karaganda", "Turkistan", "Kostanay")),
                 land_right=rng.choice(("private ownership", "temporary land use (49 years)")),
                 acquired_on=_d(rng, dt.date(2005, 1, 1)))

    def _vessel(self, iin: str | None, bin_: str | None, registry: str) -> None:
        rng = self.rng
        vtype, port = {"small": (("motor boat", "Kapchagay"), ("jet ski", "Alakol")),
                       "river": (("barge", "Pavlodar"), ("tug", "Oskemen")),
                       "sea": (("tanker", "Aktau"), ("yacht", "Aktau"), ("supply vessel",
                                                                          "Kuryk"))}[registry][
            rng.randrange(2)]
        self.add(res_vessel, owner_iin=iin, owner_bin=bin_, registry=registry,
                 name=rng.choice(("Ak Zhelken", "Kaspiy", "Irtysh", "Zhuldyz", "Sunkar")),
                 reg_number=f"{registry[:2].upper()}-{_num(rng, 5)}", vessel_type=vtype,
                 tonnage=round(rng.uniform(0.3, 12) if registry == "small" else
                               rng.uniform(150, 9000), 1),
                 built_year=rng.randint(1985, 2024), home_port=port)

    def _court_case(self, iin: str | None, bin_: str | None) -> None:
        rng = self.rng
        filed = _d(rng, dt.date(2014, 1, 1))
        done = rng.random() < 0.7
        cat = rng.choice(("civil", "administrative", "economic", "criminal") if iin else
                         ("civil", "economic", "administrative"))
        self.add(res_court_case, iin=iin, bin=bin_,
                 case_number=f"{rng.randint(1, 9)}{_num(rng, 3)}-{filed.year % 100:02d}-00-"
                             f"{rng.randint(1, 4)}/{rng.randint(1, 9999)}",
                 court=f"Specialised inter-district {cat} court of {rng.choice(_CITIES)}",
                 category=cat, party_role=rng.choice(("plaintiff", "defendant", "third party")
                                                     if cat != "criminal" else ("defendant",)),
                 filed_on=filed, judge=f"{rng.choice(_MALE + _FEMALE)[0]}. "
                                       f"{rng.choice(_SURNAMES)}",
                 status="decided" if done else "pending",
                 decision=rng.choice(("claim satisfied", "claim dismissed", "settlement",
                                      "fine imposed")) if done else None,
                 decided_on=min(filed + dt.timedelta(days=rng.randint(30, 300)), REFERENCE_DATE)
                 if done else None, hearings=rng.randint(1, 9))

    def _notary(self, iin: str | None, bin_: str | None) -> None:
        rng = self.rng
        self.add(res_notary_act, iin=iin, bin=bin_, act_type=rng.choice(
            ("power of attorney", "purchase agreement certification", "consent of spouse",
             "certified copy", "inheritance certificate") if iin else
            ("power of attorney", "charter amendment certification", "signature witnessing")),
            notary=f"Notary {rng.choice(_SURNAMES)}, {rng.choice(_CITIES)}",
            performed_on=_d(rng, dt.date(2015, 1, 1)), registry_number=f"{_num(rng, 4)}")

    def _trip(self, p: dict[str, Any]) -> None:
        rng = self.rng
        start = dt.datetime.combine(_d(rng, dt.date(2021, 1, 1), dt.date(2025, 11, 1)),
                                    dt.time(rng.randint(0, 23), rng.randint(0, 59)))
        back = start + dt.timedelta(days=rng.randint(2, 40), hours=rng.randint(0, 12))
        country, cp = rng.choice(_COUNTRIES), rng.choice(_CHECKPOINTS)
        foreign = p["citizenship"] != "KAZ"
        legs = (("entry", start), ("exit", back)) if foreign else (("exit", start), ("entry", back))
        for direction, when in legs:
            self.add(res_border_crossing, iin=p["iin"], crossed_at=when, direction=direction,
                     checkpoint=cp, country=p["citizenship"] if foreign else country,
                     document_number=p["document_number"])

    def _pension(self, iin: str, employer: str) -> None:
        rng = self.rng
        salary = rng.randint(150, 1500) * 1000 + rng.randint(0, 999)
        for year in (2024, 2025):
            for month in range(1, 13):
                amount = salary // 10 + rng.randint(0, 97)
                paid = dt.date(year + (month == 12), month % 12 + 1, rng.randint(5, 25))
                self.add(res_pension_contribution, iin=iin, period=f"{year}-{month:02d}",
                         employer_bin=employer, amount_kzt=amount, paid_on=paid)

    def _civil_service(self, iin: str, birth: dt.date) -> None:
        rng = self.rng
        start = max(birth + dt.timedelta(days=22 * 365), dt.date(1995, 1, 1))
        for _ in range(rng.randint(1, 3)):
            if start >= REFERENCE_DATE:
                break
            end = start + dt.timedelta(days=rng.randint(400, 2500))
            self.add(res_civil_service, iin=iin, agency=rng.choice((
                "Ministry of Finance", "State Revenue Committee", "Ministry of Energy",
                f"Akimat of {rng.choice(_CITIES)}", "Ministry of Trade and Integration")),
                position=rng.choice(("chief specialist", "head of division", "deputy director "
                                     "of department", "expert")),
                category=f"C-{rng.choice('OR')}-{rng.randint(1, 5)}", started_on=start,
                ended_on=end if end < REFERENCE_DATE else None)
            start = end + dt.timedelta(days=rng.randint(1, 60))


def _generate(seed: int) -> dict[str, list[dict[str, Any]]]:
    b = _Builder(seed)
    b.build()
    return b.rows


#: PostgreSQL advisory lock key for seeding (arbitrary, fixed: "res_seed" in ASCII).
_SEED_LOCK: Final = 0x7265735F73656564


def seed_dataset(engine: Engine, *, seed: int = DEFAULT_SEED) -> bool:
    """Create the ``res_*`` tables and fill them once; return ``True`` if it seeded now.

    Idempotent: a second call with the same seed does nothing (a marker row in
    ``res_meta`` records version and seed). On PostgreSQL concurrent callers are
    serialised by an advisory lock, so exactly one of them seeds. A database seeded with
    a different seed or dataset version raises :class:`~siogw_api.errors.StorageError`
    rather than mixing data.
    """
    marker = f"v{DATASET_VERSION}:{seed}"
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Serialise first-time seeding between processes (replicas starting at
                # once); DDL is transactional there, so tables + rows appear together.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEED_LOCK})
            metadata.create_all(conn, checkfirst=True)
            found = conn.execute(
                sa.select(res_meta.c.value).where(res_meta.c.key == "dataset")
            ).scalar_one_or_none()
            if found == marker:
                return False
            if found is not None:
                raise StorageError(
                    "the resource dataset was seeded differently",
                    detail=f"database has {found}, asked for {marker}; drop the res_ tables",
                )
            conn.execute(res_meta.insert(), [{"key": "dataset", "value": marker}])
            rows = _generate(seed)
            for table in metadata.sorted_tables:
                if table is not res_meta and rows[table.name]:
                    conn.execute(table.insert(), rows[table.name])
    except sa.exc.SQLAlchemyError as exc:
        # Another process may have seeded concurrently: that is success, not an error.
        if _marker(engine) == marker:
            return False
        raise StorageError("could not seed the resource dataset", detail=str(exc)) from exc
    return True


def _marker(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(res_meta.c.value).where(res_meta.c.key == "dataset")
            ).scalar_one_or_none()
    except sa.exc.SQLAlchemyError:
        return None


def drop_dataset(engine: Engine) -> None:
    """Drop every ``res_*`` table (tests, re-seeding)."""
    metadata.drop_all(engine, checkfirst=True)


def dump_dataset(conn: Connection) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Every table's rows in primary-key order (for determinism checks)."""
    for table in metadata.sorted_tables:
        order = list(table.primary_key.columns)
        yield table.name, [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
