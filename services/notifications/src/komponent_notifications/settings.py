"""Notifications' configuration from the environment (the runtime's settings cover Kafka, PG and HTTP)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .adapters.mime import MailIdentity
from .adapters.smtp_pool import SmtpSettings
from .domain.course import ContactPerson
from .domain.policy import NotificationPolicy
from .domain.smtp_replies import RetryPolicy
from .service_layer.sender import DURABLE_RETRY, SenderConfig


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    smtp_host: str = Field("127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(2525, validation_alias="SMTP_PORT")
    smtp_username: str = Field("", validation_alias="SMTP_USERNAME")
    smtp_password: str = Field("", validation_alias="SMTP_PASSWORD")
    smtp_pool_size: int = Field(4, ge=1, validation_alias="SMTP_POOL_SIZE")
    smtp_timeout_seconds: float = Field(30.0, validation_alias="SMTP_TIMEOUT_SECONDS")
    smtp_max_messages_per_connection: int = Field(
        1000, ge=1, validation_alias="SMTP_MAX_MESSAGES_PER_CONNECTION"
    )
    billing_url: str = Field("http://127.0.0.1:8003", validation_alias="BILLING_URL")
    # This service's key at billing (scope `billing:documents`), to fetch invoice PDFs.
    billing_api_key: str = Field("", validation_alias="BILLING_API_KEY")
    mail_from: str = Field("kurser@komponent.dk", validation_alias="MAIL_FROM")
    mail_from_name: str = Field("Komponent", validation_alias="MAIL_FROM_NAME")
    message_id_domain: str = Field("mail.komponent.dk", validation_alias="MAIL_MESSAGE_ID_DOMAIN")
    billing_reply_to: str = Field("", validation_alias="MAIL_BILLING_REPLY_TO")
    send_became_binding: bool = Field(True, validation_alias="NOTIFY_SEND_BECAME_BINDING")
    send_course_reminder: bool = Field(True, validation_alias="NOTIFY_SEND_COURSE_REMINDER")
    batch_size: int = Field(100, ge=1, validation_alias="NOTIFY_BATCH_SIZE")
    lease_seconds: float = Field(120.0, gt=0, validation_alias="NOTIFY_LEASE_SECONDS")
    poll_seconds: float = Field(0.2, gt=0, validation_alias="NOTIFY_POLL_SECONDS")
    retry_base_seconds: float = Field(2.0, gt=0, validation_alias="NOTIFY_RETRY_BASE_SECONDS")
    retry_max_seconds: float = Field(900.0, gt=0, validation_alias="NOTIFY_RETRY_MAX_SECONDS")
    retry_max_attempts: int = Field(
        DURABLE_RETRY.max_attempts, ge=1, validation_alias="NOTIFY_RETRY_MAX_ATTEMPTS"
    )
    # SMTP transactions in progress at once; 0: one per pool connection. Duplicates per crash stay at most
    # one whatever this is: the SMTP pool's final-dot gate lets one message at a time from its final "."
    # to its recorded verdict.
    lanes: int = Field(0, ge=0, validation_alias="NOTIFY_LANES")
    course_wait_seconds: float = Field(6 * 3600, gt=0, validation_alias="NOTIFY_COURSE_WAIT_SECONDS")

    def smtp(self) -> SmtpSettings:
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            username=self.smtp_username,
            password=self.smtp_password,
            pool_size=self.smtp_pool_size,
            timeout_seconds=self.smtp_timeout_seconds,
            max_messages_per_connection=self.smtp_max_messages_per_connection,
        )

    def identity(self) -> MailIdentity:
        return MailIdentity(
            self.mail_from,
            self.mail_from_name,
            self.message_id_domain,
            billing_reply_to=self.billing_reply_to,
        )

    def policy(self) -> NotificationPolicy:
        return NotificationPolicy(self.send_became_binding, self.send_course_reminder)

    def fallback_contact(self) -> ContactPerson:
        return ContactPerson(self.mail_from_name, self.mail_from, "")

    def sender(self) -> SenderConfig:
        return SenderConfig(
            batch_size=self.batch_size,
            lease_seconds=self.lease_seconds,
            idle_poll_seconds=self.poll_seconds,
            retry=RetryPolicy(
                max_attempts=self.retry_max_attempts,
                base_delay=timedelta(seconds=self.retry_base_seconds),
                factor=2,
                max_delay=timedelta(seconds=max(self.retry_max_seconds, self.retry_base_seconds)),
            ),
            course_wait=timedelta(seconds=self.course_wait_seconds),
            lanes=self.lanes or self.smtp_pool_size,
        )
