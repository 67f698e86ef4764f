"""Imports every domain's tables so Alembic and tests see the whole schema."""

from removeany.accounts.models import ApiKey, User, WebSession
from removeany.credits.models import CreditEntry, CreditHold, CreditLot
from removeany.jobs.models import Job

__all__ = ["ApiKey", "CreditEntry", "CreditHold", "CreditLot", "Job", "User", "WebSession"]
