"""Serve fixtures (helpers live in serve_helpers.py)."""

from __future__ import annotations

import pytest
from serve_helpers import make_app


@pytest.fixture()
def served(tmp_path):
    """(TestClient, index, generator) for the default test app; the client runs the app's lifespan."""
    from fastapi.testclient import TestClient

    app, index, generator = make_app(tmp_path)
    with TestClient(app) as client:
        yield client, index, generator
