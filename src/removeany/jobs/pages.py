"""Web pages for jobs beyond the workspace: the watermark editor (/app/watermark).

The editor is rendered here and run by `static/watermark_editor.js`: the chosen photo is shown
on a canvas, `POST /api/v1/watermark/detect` (free) answers where the watermark is, the person
corrects that mask with a brush and an eraser, and "Remove watermark" sends the photo with the
edited mask as `mask_file` to `POST /api/v1/jobs` (charged at the catalogue price). The job
page (/jobs/{id}) then shows the before/after and the download.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from removeany import i18n
from removeany.api.watermark import WORK_SIDE
from removeany.catalog.prices import price_ranges
from removeany.credits import service as ledger
from removeany.web.routes import _ctx, _to_login, _viewer, price_parts, render, t

router = APIRouter(include_in_schema=False)

SERVICE = "remove_watermark"
SIZE = "full"  # the editor keeps the photo's own size


def _price_label(credits: int | None) -> str:
    if credits is None:
        return t("Remove watermark")
    if credits == 1:
        return t("Remove watermark (1 credit)")
    return t("Remove watermark ({credits} credits)", credits=credits)


def _editor_strings(max_mb: int) -> dict[str, Any]:
    """What the editor's script says, translated on the server like everything else."""
    return {
        "detecting": t("Looking for the watermark…"),
        "found": t(
            "The watermark is marked in red. Paint over anything that was missed and erase "
            "anything that is not part of it."
        ),
        "notFound": t("No watermark was found. Paint over it with the brush."),
        "detectFailed": t("The watermark could not be found automatically. Paint over it."),
        "empty": t("Nothing is marked. Paint over the watermark first."),
        "cleared": t("The mask is cleared."),
        "undone": t("Undone."),
        "submitting": t("Sending the photo and your mask…"),
        "loadFailed": t("This photo could not be opened. Choose a JPG, PNG or WebP image."),
        "notImage": t("Choose a JPG, PNG or WebP image."),
        "tooLarge": t("The file is larger than {mb} MB. Choose a smaller file.", mb=max_mb),
        "network": t("The connection was lost. Check your network and try again."),
        "signedOut": t("Your session has ended. Sign in again to continue."),
        "failed": t("Something went wrong. Please try again."),
        "sizeValue": t("{size} px"),
        "boxSize": t("The photo is {width} × {height} px."),  # noqa: RUF001
        "boxMarked": t("Box marked: {width} × {height} px at {x}, {y}."),  # noqa: RUF001
        "boxUnmarked": t("Box unmarked: {width} × {height} px at {x}, {y}."),  # noqa: RUF001
        "boxInvalid": t(
            "Give the box in whole pixels inside the photo: width and height at least 1."
        ),
        "brush": t("Brush selected"),
        "eraser": t("Eraser selected"),
        "errors": i18n.error_sentences(),
        "errorForms": i18n.error_forms(),
    }


@router.get("/app/watermark", response_class=HTMLResponse)
def watermark_editor(request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        balance = ledger.balance(session, viewer.user.id, ctx.now())
        # By the photo's size where the tiers' prices differ: watermark_editor.js labels the
        # button with the price of the photo chosen. None: not offered (the API says so).
        ranges = price_ranges(session, SERVICE, SIZE)
        price: int | None = ranges[0][0] if ranges else None
    max_mb = ctx.settings.max_upload_bytes // (1024 * 1024)
    return render(
        request,
        "watermark_editor.html",
        viewer=viewer,
        balance=balance,
        price=price,
        price_text=price_parts(ranges) if len(ranges) > 1 else None,
        price_ranges=[
            {"credits": credits, "upTo": bound, "label": _price_label(credits)}
            for credits, bound in ranges
        ],
        price_label=_price_label(price if len(ranges) == 1 else None),
        max_mb=max_mb,
        work_side=WORK_SIDE,
        editor_strings=_editor_strings(max_mb),
    )
