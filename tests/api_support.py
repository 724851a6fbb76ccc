"""What the IHC API tests share about the protocol's local server (``pipeline.ihc_api.local_server``)."""

from __future__ import annotations


def posts(server) -> list:
    """The POST requests (the attribution calls) the local server received, in order."""
    return [r for r in server.received if r.method == "POST"]
