"""Imports every domain's tables so Alembic and tests see the whole schema."""

from removeany.accounts.models import (
    ApiKey,
    KnownDevice,
    PasswordResetToken,
    RateCounter,
    RecoveryCode,
    User,
    WebSession,
)
from removeany.batches.models import Batch
from removeany.billing.models import CreditPack, Order, PaymentEvent
from removeany.catalog.models import Price
from removeany.credits.models import (
    CreditEntry,
    CreditHold,
    CreditLot,
    PromoCode,
    PromoRedemption,
    SignupGrant,
)
from removeany.infra.installation import InstallationKey
from removeany.jobs.models import Job
from removeany.legal.models import LegalVersion, TermsAcceptance
from removeany.mail.models import OutgoingMail
from removeany.moderation.models import Announcement, AuditEntry, ServiceStatus
from removeany.privacy.models import JobFileDeletion

__all__ = [
    "Announcement",
    "ApiKey",
    "AuditEntry",
    "Batch",
    "CreditEntry",
    "CreditHold",
    "CreditLot",
    "CreditPack",
    "InstallationKey",
    "Job",
    "JobFileDeletion",
    "KnownDevice",
    "LegalVersion",
    "Order",
    "OutgoingMail",
    "PasswordResetToken",
    "PaymentEvent",
    "Price",
    "PromoCode",
    "PromoRedemption",
    "RateCounter",
    "RecoveryCode",
    "ServiceStatus",
    "SignupGrant",
    "TermsAcceptance",
    "User",
    "WebSession",
]
