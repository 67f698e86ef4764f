"""JSON API for the caller's own credits: balance, lots and history."""

from __future__ import annotations

from fastapi import APIRouter, Request

from removeany.api.auth import require_user
from removeany.context import Context
from removeany.credits import repository as repo
from removeany.credits import service as ledger
from removeany.credits.schemas import CreditsOut, EntryOut, LotOut

router = APIRouter(prefix="/api/v1", tags=["credits"])


@router.get("/credits", response_model=CreditsOut)
def credits(request: Request) -> CreditsOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        bal = ledger.balance(session, user.id, ctx.now())
        return CreditsOut(
            available=bal.available,
            held=bal.held,
            lots=[
                LotOut.model_validate(lot, from_attributes=True)
                for lot in repo.lots(session, user.id)
            ],
            entries=[
                EntryOut.model_validate(e, from_attributes=True)
                for e in repo.entries(session, user.id)
            ],
        )
