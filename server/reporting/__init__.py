"""The FM-1 reporting channel (R17, R18; issue 16; ``docs/adr/0009-reporting.md``).

* :mod:`server.reporting.fm1` -- the FM-1 message and its one validating parser;
* :mod:`server.reporting.calendar` -- Kazakhstan's working days and the deadlines (S§35);
* :mod:`server.reporting.store` -- the stored messages, their retention, the parties feed
  for re-screening (:func:`server.reporting.store.iter_parties`);
* :mod:`server.reporting.service` -- ``siogw.v1.ReportingService``.
"""
