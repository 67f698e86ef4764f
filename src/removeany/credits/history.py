"""The user-facing view of the ledger: balance, lots, and entries explained."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from removeany.credits import repository as repo
from removeany.credits import service as ledger
from removeany.credits.schemas import CreditsOut, EntryOut, LotOut


def credits_view(session: Session, user_id: int, *, now: datetime, warning_days: int) -> CreditsOut:
    bal = ledger.balance(session, user_id, now)
    lots = repo.lots(session, user_id)
    by_id = {lot.id: lot for lot in lots}
    horizon = now + timedelta(days=warning_days)
    soon = [lot for lot in lots if lot.remaining > 0 and now < lot.expires_at <= horizon]
    entries = []
    for entry in repo.entries(session, user_id):
        lot = by_id[entry.lot_id]
        entries.append(
            EntryOut(
                id=entry.id,
                lot_id=entry.lot_id,
                lot_source=lot.source,
                lot_expires_at=lot.expires_at,
                kind=entry.kind,
                amount=entry.amount,
                reference=entry.reference,
                job_id=entry.reference.removeprefix("job:")
                if entry.reference.startswith("job:")
                else None,
                note=entry.note,
                created_at=entry.created_at,
            )
        )
    return CreditsOut(
        available=bal.available,
        held=bal.held,
        expiring_soon=[LotOut.model_validate(lot, from_attributes=True) for lot in soon],
        lots=[LotOut.model_validate(lot, from_attributes=True) for lot in lots],
        entries=entries,
    )
