"""The resource catalogue (SPEC R2, Appendix 2) and the role → basis table (R1).

Every resource is a frozen :class:`Resource`: its catalogue number, English name, access
right, and the lookup parameters it accepts (a query gives exactly one of them). Only
resource 11 (pension contributions) is :attr:`AccessRight.TRUNCATED`; for it
:attr:`Resource.schema` is a :class:`TruncatedSchema`: the typed fields of the subject and
of each row that may leave the server. :func:`server.resources.access.apply_access_right`
rebuilds the answer from those fields only (contribution amounts in particular never
leave) and refuses any answer that does not fit the schema.

Parameter names: ``iin`` (person), ``bin`` (legal entity), ``plate`` (vehicle
registration plate), ``phone`` (+7 and 10 digits). Appendix 2 names the resources and
their access rights only; the parameters follow each register's practice. Public
procurement (27), foreign economic activity (28) and the register of unscrupulous
procurement participants (39) list suppliers and declarants that are legal entities (BIN)
*or individual entrepreneurs*, who are identified by their IIN — so those take both.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.resources.errors import BasisNotAllowed, UnknownResource

__all__ = [
    "CATALOGUE",
    "PARAMETERS",
    "ROLE_BASES",
    "AccessRight",
    "Basis",
    "FieldType",
    "Resource",
    "Role",
    "TruncatedSchema",
    "allowed_bases",
    "check_basis",
    "get_resource",
]


class AccessRight(enum.StrEnum):
    """How much of a resource's answer the agency may receive (Appendix 2)."""

    FULL = "full"
    TRUNCATED = "truncated"


class Role(enum.StrEnum):
    """The roles of the IES rules. Only the agency user sends queries."""

    AGENCY_USER = "agency_user"  # AFM employee (analyst)
    OPERATOR = "operator"
    CONTROLLER = "controller"
    PROSECUTOR = "prosecutor"
    SECURITY_OFFICER = "security_officer"
    # Issue 16: a crypto-asset service provider's compliance officer.
    COMPLIANCE_OFFICER = "compliance_officer"
    # Issue 16, point 6: the agency's officer who publishes the List and the Lists.
    LIST_OFFICER = "list_officer"


class Basis(enum.StrEnum):
    """Legal bases for a query (Appendix 1)."""

    FINANCIAL_MONITORING = "financial_monitoring"


#: Appendix 1: role → the bases it may name in a query. Roles without a basis cannot query.
ROLE_BASES: Mapping[Role, frozenset[Basis]] = MappingProxyType(
    {
        Role.AGENCY_USER: frozenset({Basis.FINANCIAL_MONITORING}),
        Role.OPERATOR: frozenset(),
        Role.CONTROLLER: frozenset(),
        Role.PROSECUTOR: frozenset(),
        Role.SECURITY_OFFICER: frozenset(),
        Role.COMPLIANCE_OFFICER: frozenset(),
        Role.LIST_OFFICER: frozenset(),
    }
)

#: Every lookup parameter name a resource may accept, with what it identifies.
PARAMETERS: Mapping[str, str] = MappingProxyType(
    {
        "iin": "individual identification number (12 digits, mod-11 check digit)",
        "bin": "business identification number (12 digits, mod-11 check digit)",
        "plate": "vehicle registration plate (4-10 letters/digits)",
        "phone": "phone number, +7 and 10 digits",
    }
)


def allowed_bases(role: str) -> frozenset[Basis]:
    """The bases ``role`` may name; empty for a role that cannot query or is unknown."""
    try:
        return ROLE_BASES[Role(role)]
    except ValueError:
        return frozenset()


def check_basis(role: str, basis: str) -> Basis:
    """Return ``basis`` as a :class:`Basis` if ``role`` may name it, else raise (R1, §2)."""
    for b in allowed_bases(role):
        if b.value == basis:
            return b
    raise BasisNotAllowed(
        f"basis {basis!r} is not allowed for role {role!r}",
        detail="Appendix 1: only agency_user may query, on basis financial_monitoring",
    )


class FieldType(enum.StrEnum):
    """The value types a truncated resource's fields may have (all strings on the wire).

    None of them is a JSON number: the only number a truncated answer carries is the row
    count, which the gateway computes itself.
    """

    IIN = "iin"  # a valid IIN (12 digits, check digit, date)
    BIN = "bin"  # a valid BIN
    MONTH = "month"  # YYYY-MM
    DATE = "date"  # YYYY-MM-DD, a calendar date
    NAME = "name"  # free text of 1..256 characters with at least one letter


@dataclass(frozen=True, slots=True)
class TruncatedSchema:
    """What a truncated resource's answer may carry (SPEC R2).

    The answer is ``{"subject": {...}, "count": <n>, "records": [ {...}, ... ]}``: the
    subject's fields are :attr:`subject`, each record is an object whose fields are
    :attr:`row` (every one present; ``None`` allowed only for :attr:`nullable`), and
    ``count`` is ``len(records)``. Every other key of the upstream's answer is dropped.
    """

    subject: Mapping[str, FieldType]
    row: Mapping[str, FieldType]
    nullable: frozenset[str] = frozenset()
    max_rows: int = 10_000


@dataclass(frozen=True, slots=True)
class Resource:
    """One information resource of Appendix 2."""

    number: int
    name: str
    access_right: AccessRight
    #: Lookup parameter names; a query gives exactly one of them.
    parameters: tuple[str, ...]
    #: For a truncated resource, the only typed fields its answer may carry.
    schema: TruncatedSchema | None = None

    @property
    def truncated(self) -> bool:
        """``True`` if the server strips part of this resource's answer."""
        return self.access_right is AccessRight.TRUNCATED


_F = AccessRight.FULL
_P = ("iin",)
_E = ("bin",)
_PE = ("iin", "bin")

#: Resource 11 keeps who paid for which month and when — never how much.
_PENSION_SCHEMA = TruncatedSchema(
    subject=MappingProxyType({"iin": FieldType.IIN}),
    row=MappingProxyType({
        "period": FieldType.MONTH,
        "employer_bin": FieldType.BIN,
        "employer_name": FieldType.NAME,
        "paid_on": FieldType.DATE,
    }),
    nullable=frozenset({"employer_name"}),
)

_TABLE: tuple[Resource, ...] = (
    Resource(1, 'State DB "Individuals"', _F, _P),
    Resource(2, 'State DB "Legal entities"', _F, _E),
    Resource(3, 'DB "Real estate register"', _F, _PE),
    Resource(4, 'DB "Land plots"', _F, _PE),
    Resource(5, 'DB "Vehicles"', _F, ("iin", "bin", "plate")),
    Resource(6, 'DB "Registered weapons"', _F, _P),
    Resource(7, 'DB "Railway rolling stock"', _F, _E),
    Resource(8, 'DB "River and small vessels"', _F, _PE),
    Resource(9, 'DB "Sea vessels"', _F, _PE),
    Resource(10, 'DB "Agricultural machinery"', _F, _PE),
    Resource(11, 'DB "Pension contributions"', AccessRight.TRUNCATED, _P, _PENSION_SCHEMA),
    Resource(12, 'DB "Disability"', _F, _P),
    Resource(13, "Services received at public service centres", _F, _P),
    Resource(14, 'DB "Special records"', _F, _P),
    Resource(15, 'DB "Unified statistical system"', _F, _E),
    Resource(16, 'DB "Judicial bodies"', _F, _PE),
    Resource(17, 'DB "Court cards"', _F, _P),
    Resource(18, "Request about a civil servant", _F, _P),
    Resource(19, "Photo from the population documentation system", _F, _P),
    Resource(20, "Form 1 from the population documentation system", _F, _P),
    Resource(21, 'DB "E-Notary"', _F, _PE),
    Resource(22, 'DB "Civil status records"', _F, _P),
    Resource(23, "Border crossings by citizens", _F, _P),
    Resource(24, "Border crossings by foreign citizens", _F, _P),
    Resource(25, 'DB "Taxpayers"', _F, _PE),
    Resource(26, 'DB "E-licensing"', _F, _PE),
    Resource(27, 'DB "Electronic public procurement"', _F, _PE),
    Resource(28, 'DB "Foreign economic activity participants"', _F, _PE),
    Resource(29, 'DB "Passenger customs declarations"', _F, _P),
    Resource(30, 'DB "Vehicle customs declarations"', _F, _PE),
    Resource(31, 'DB "Foreign labour force"', _F, _E),
    Resource(32, 'DB "Subsoil use contracts (hydrocarbons)"', _F, _E),
    Resource(33, 'DB "Subsoil use contracts (solid minerals and groundwater)"', _F, _E),
    Resource(34, "Budget receipts", _F, _PE),
    Resource(35, 'DB "Kazakhstan Temir Zholy" (railway passengers)', _F, _P),
    Resource(36, 'DB "Kazakhtelecom"', _F, ("iin", "bin", "phone")),
    Resource(37, 'DB "Persons hiding from investigation/inquiry"', _F, _P),
    Resource(38, 'DB "Missing persons"', _F, _P),
    Resource(39, "Check of unscrupulous public procurement participants", _F, _PE),
    Resource(40, "Search of addresses and contact phones", _F, ("iin", "phone")),
    Resource(41, "Information on civil servants", _F, _P),
    Resource(42, "Postal items", _F, _P),
    Resource(43, "Dispensary registration of an individual", _F, _P),
    Resource(44, "Registration of foreigners staying temporarily", _F, _P),
    Resource(45, "Permanent residence permits for foreigners and stateless persons", _F, _P),
    Resource(46, "Work permits for foreigners employed by individuals", _F, _P),
    Resource(47, "Exit documents for permanent residence abroad", _F, _P),
    Resource(48, "Invitations to enter for private matters", _F, _P),
    Resource(49, "Acquisition and renunciation of citizenship", _F, _P),
    Resource(50, "Relationships, level 1", _F, _PE),
    Resource(51, "Relationships, level 2", _F, _PE),
    Resource(52, "Mobile citizens database", _F, ("iin", "phone")),
)

#: The catalogue by number, 1..52 in order.
CATALOGUE: Mapping[int, Resource] = MappingProxyType({r.number: r for r in _TABLE})


def get_resource(number: object) -> Resource:
    """The resource numbered ``number``; :class:`UnknownResource` for anything not 1..52."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise UnknownResource(f"resource number must be an integer, got {type(number).__name__}")
    try:
        return CATALOGUE[number]
    except KeyError:
        raise UnknownResource(
            f"unknown resource {number}", detail="the catalogue has resources 1..52"
        ) from None
