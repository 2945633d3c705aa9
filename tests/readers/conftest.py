"""A test client for the signed SendGrid Event Webhook, configured with the test key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digest.runtime import App
from digest.web.admin import router
from tests.webhook_signing import PUBLIC


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    app.settings = app.settings.model_copy(update={"sendgrid_webhook_public_key": PUBLIC})
    api = FastAPI()
    api.include_router(router)
    api.state.digest = app
    with TestClient(api, raise_server_exceptions=False) as test_client:
        yield test_client
