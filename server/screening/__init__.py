"""The List and the Lists (issue 16, point 6; SPEC R18): list files (:mod:`.parse`),
matching (:mod:`.match`), the service (:mod:`.service`) and its gRPC servicer
(:mod:`.servicer`). ADR 0010."""

from server.screening.service import (
    COMPLIANCE_OFFICER,
    LIST_OFFICER,
    ScreeningService,
    SourcedSubject,
    SubjectSource,
)

__all__ = ["COMPLIANCE_OFFICER", "LIST_OFFICER", "ScreeningService", "SourcedSubject",
           "SubjectSource"]
