"""The sio-gateway API: what server and clients share on the wire.

* ``siogw_api.v1``: the protobuf messages and gRPC stubs of package ``siogw.v1``,
  generated from ``protos/`` (``make protos``; never edited by hand);
* :mod:`siogw_api.errors`: the project's one error root, its sub-roots by origin and
  their exit codes;
* :mod:`siogw_api.timeutil`: the wire's time format (UTC stored, Astana time rendered).

It imports nothing else of the project: signing, audit, server and clients build on it.
"""
