from __future__ import annotations

from pathlib import Path

import pytest

from invoiceflow.core.settings import Settings


@pytest.fixture
def outbox(app_settings: Settings) -> Path:
    """Where the test app writes its .eml files (no SMTP configured)."""
    return app_settings.outbox_dir
