"""Small builders shared by tests: real users through the real services."""

from __future__ import annotations

from removeany.accounts import service as accounts
from removeany.accounts.models import User
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.legal import service as legal


def make_user(ctx: Context, email: str = "ada@example.com", *, credits: int = 10) -> User:
    with ctx.db.transaction() as session:
        user = accounts.create_user(
            session, email, "correct horse battery", now=ctx.now(), verified=True
        )
        legal.accept(session, user, legal.current(session).version, now=ctx.now())
        if credits:
            ledger.grant(
                session,
                user.id,
                credits,
                source="admin",
                now=ctx.now(),
                expires_at=None,
                reference="test",
            )
        return user


def make_api_key(ctx: Context, user: User) -> str:
    with ctx.db.transaction() as session:
        return accounts.create_api_key(session, user, "test", now=ctx.now())[0]
