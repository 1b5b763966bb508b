"""Runtime configuration, read from `INVOICEFLOW_*` environment variables.

Embedded mode is what you get with no configuration at all; scale-out mode is the same code with a
PostgreSQL URL, Redis URL and so on set.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SENDER = "invoiceflow <no-reply@invoiceflow.local>"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICEFLOW_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: SecretStr | None = None
    redis_url: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_sse: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = None
    s3_kms_key_id: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    smtp_url: str | None = None
    rabbitmq_url: str | None = None
    # A durable topic exchange; each event is published with its type as the routing key.
    rabbitmq_exchange: str = Field(default="invoiceflow.events", min_length=1, max_length=255)
    # Webhook URLs may point at loopback/private/link-local addresses only when this is on (tests, a
    # receiver on the same machine in embedded mode); otherwise they are refused (SSRF guard).
    webhook_allow_private_networks: bool = False
    einvoice_rules_dir: Path | None = None
    # Validation sidecar processes: 1 runs the Peppol/Factur-X schematron on a second core beside the EN 16931
    # one (lower latency); 0 runs every layer in-process (batch callers that already use every core).
    einvoice_validation_workers: int = Field(default_factory=lambda: 1 if (os.cpu_count() or 1) >= 2 else 0, ge=0, le=1)
    # The From of every email. INVOICEFLOW_MAIL_FROM is its first name and still works; SMTP_FROM wins.
    smtp_from: str = DEFAULT_SENDER
    mail_from: str = DEFAULT_SENDER
    # A Slack incoming-webhook URL for job and workflow failures; unset: no Slack messages.
    slack_webhook_url: SecretStr | None = None
    # Encrypts integration credentials at rest (integrations/crypto.py); unset: derived from the secret key.
    encryption_key: SecretStr | None = None
    # Processes that validate documents during integration jobs; unset: one per CPU (0 = threads in-process).
    integration_validation_workers: int | None = Field(default=None, ge=0, le=64)
    public_base_url: str = "http://localhost:8000"
    # Whether this API process also runs workflows. Unset: yes on SQLite (embedded mode, one process),
    # no on PostgreSQL, where `invoiceflow worker` processes run them.
    run_workflows: bool | None = None
    # A stable name for this process among workflow executors: a restarted process resumes its own
    # workflows, and survivors take over those of an executor that stopped heart-beating.
    executor_id: str | None = Field(default=None, min_length=1, max_length=128)
    # Invoice workflows one process runs at once.
    workflow_concurrency: int = Field(default=16, ge=1, le=256)
    # Workers beat every `heartbeat` seconds; one silent for `dead_after` seconds is taken to be dead and
    # its pending workflows are resumed by a surviving worker.
    workflow_heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    workflow_dead_after_seconds: float = Field(default=60.0, gt=0, le=86400)
    # Multiplies every workflow retry delay (tests and drills shorten hours of backoff to moments).
    workflow_retry_delay_scale: float = Field(default=1.0, gt=0, le=10)

    environment: Literal["development", "production", "test"] = "development"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    password_reset_ttl_seconds: int = Field(default=3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    default_api_key_rate_limit: int = Field(default=600, ge=1)
    # argon2id cost; the defaults follow RFC 9106's second recommended option (64 MiB, t=3).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_invoice_lines: int = Field(default=1000, ge=1)
    # S3 caps a SigV4 presigned URL at 7 days; links are meant to be short-lived.
    download_url_ttl_seconds: int = Field(default=900, ge=30, le=7 * 86400)
    pdf_page_size: Literal["A4", "LETTER"] = "A4"
    # Processes that render PDF and Excel files (ReportLab holds the GIL for a whole render); 0 renders in a
    # thread of the calling process.
    pdf_render_workers: int = Field(default_factory=lambda: 1 if (os.cpu_count() or 1) >= 2 else 0, ge=0, le=16)

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _one_sender(self) -> Settings:
        if "smtp_from" not in self.model_fields_set and "mail_from" in self.model_fields_set:
            self.smtp_from = self.mail_from
        else:
            self.mail_from = self.smtp_from
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'invoiceflow.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def runs_workflows(self) -> bool:
        return self.is_sqlite if self.run_workflows is None else self.run_workflows

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or generated once into the data folder and reused."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"secret.key.{secrets.token_hex(8)}")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            # link() refuses to overwrite: when several processes start at once, the first key wins.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
