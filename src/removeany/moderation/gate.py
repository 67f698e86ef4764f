"""The checks before any new job is charged: the account may process, the service is
available, and the current terms are accepted. Called inside the submission transaction,
before the credits are reserved (api/submit.py; batches should call it too)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.errors import Forbidden
from removeany.i18n import ERROR_FORMS
from removeany.legal import service as legal
from removeany.moderation.service import require_service_available


def check_submission(session: Session, user: User, service: str, *, batch: bool = False) -> None:
    if user.status == "restricted":
        # With the administrator's reason in a sentence pages translate around it.
        raise Forbidden(
            ERROR_FORMS["account_restricted"].format(message=user.status_reason)
            if user.status_reason
            else "Processing is disabled on this account by an administrator. You can still "
            "download and export your data; contact the operator to appeal.",
            code="account_restricted",
        )
    require_service_available(session, service)
    if batch:
        require_service_available(session, "batch")
    legal.require_current(session, user)
