"""sio-gateway: the `siogw` command and the demo.

The product's parts live in sibling packages: ``signing`` (hardware signing, envelopes,
trust), ``audit`` (WORM log-journal), ``server`` (gRPC services), ``clients``
(client library and CLI) and ``softhsm`` (token store set-up).
"""

__version__ = "0.1.0"
