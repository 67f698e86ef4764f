"""Reading the ledger the way an auditor would: from its tables, not through our counters."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from removeany.context import Context
from removeany.credits import service as ledger
from removeany.credits.models import CreditEntry, CreditHold
from removeany.jobs.models import Job


def audit(ctx: Context, user_id: int) -> dict[str, object]:
    with ctx.db.transaction() as session:
        jobs = session.scalars(select(Job).where(Job.user_id == user_id)).all()
        holds = session.scalars(select(CreditHold).where(CreditHold.user_id == user_id)).all()
        entries = session.scalars(select(CreditEntry).where(CreditEntry.user_id == user_id)).all()
        balance = ledger.balance(session, user_id, ctx.now())
    captures = Counter(e.reference for e in entries if e.kind == "capture")
    return {
        "statuses": Counter(j.status for j in jobs),
        "captured": sum(h.amount for h in holds if h.status == "captured"),
        "held": balance.held,
        "available": balance.available,
        "open_holds": [h.reference for h in holds if h.status == "held"],
        "double_captures": [ref for ref, n in captures.items() if n > 1],
        "jobs": {j.id: j for j in jobs},
    }
