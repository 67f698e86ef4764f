"""At startup: publish the newest built-in terms where no operator text is in force
(`legal.service.install_builtin`), in a transaction of its own. `build_context(migrate=True)`
calls it, so `serve` and every operator command do it after migrating."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from removeany.legal import service as legal

if TYPE_CHECKING:
    from removeany.context import Context

log = logging.getLogger(__name__)


def install_builtin_terms(ctx: Context) -> legal.Installed:
    try:
        with ctx.db.transaction() as session:
            done = legal.install_builtin(session, base_url=ctx.settings.base_url, now=ctx.now())
    except IntegrityError:
        # Another process starting at the same moment published it first (same version
        # number): its transaction told the users.
        log.info("built-in terms: another process published them")
        return legal.Installed()
    if done.published is not None and done.replaced:
        log.warning(
            "published the built-in terms version %s; users were emailed and must accept it "
            "before their next job",
            done.published.version,
        )
    if done.withheld is not None:
        log.warning(
            "this release brings built-in terms version %s (%s); your own version %s stays in "
            "force and was not replaced. `removeany admin builtin-terms DIR` writes the built-in "
            "texts out to compare; if yours no longer says what the software keeps, publish a "
            "new version of your own (`removeany admin publish-terms DIR`)",
            legal.BUILTIN.version,
            legal.BUILTIN.summary,
            done.withheld,
        )
    return done
