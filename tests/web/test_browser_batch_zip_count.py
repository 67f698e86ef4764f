"""A ZIP chosen on /batches is counted in the browser, from its central directory, before it
is sent: the page's estimate and its warning that the balance is short count the images the
server counts when it refuses an unaffordable batch (batches/service.py count_zip_images),
which it does only once the whole ZIP has arrived. Before, the page counted only loose images
and said a ZIP's were counted on upload, so a ZIP the balance could not pay was sent whole
with no warning."""

from __future__ import annotations

import base64
import io
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from removeany.batches import service
from removeany.batches.models import Batch
from removeany.context import build_context
from removeany.infra.settings import Settings
from tests.batches._images import photo_paths, small_photo
from tests.helpers import make_user
from tests.web.conftest import both_languages
from tests.web.test_browser import LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_browser_batch_upload import EMAIL, SHORT, _sign_in

pytestmark = pytest.mark.browser


def _zip(members: list[tuple[str, bytes]], *, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are one of the cases
        for name, data in members:
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def _rewrite(data: bytes, change: Callable[[int, dict[str, Any]], None]) -> bytes:
    """The ZIP with its central directory rebuilt after `change(index, entry)` edited an
    entry's raw name, flags, external attributes, size or extra field (the members' local
    headers and data stay as they were, which is all a central directory reader sees)."""
    end = data.rindex(b"PK\x05\x06")
    (_sig, _d, _ds, count, total, _size, offset, clen) = struct.unpack(
        "<4s4H2LH", data[end : end + 22]
    )
    entries = []
    at = offset
    for i in range(count):
        fields = list(struct.unpack("<4s4B4HL2L5H2L", data[at : at + 46]))
        nlen, xlen, clen_ = fields[12:15]
        name = data[at + 46 : at + 46 + nlen]
        extra = data[at + 46 + nlen : at + 46 + nlen + xlen]
        comment = data[at + 46 + nlen + xlen : at + 46 + nlen + xlen + clen_]
        entry = {"fields": fields, "name": name, "extra": extra, "comment": comment}
        change(i, entry)
        entries.append(entry)
        at += 46 + nlen + xlen + clen_
    directory = b""
    for entry in entries:
        fields = entry["fields"]
        fields[12:15] = [len(entry["name"]), len(entry["extra"]), len(entry["comment"])]
        directory += struct.pack("<4s4B4HL2L5H2L", *fields)
        directory += entry["name"] + entry["extra"] + entry["comment"]
    record = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, count, total, len(directory), offset, clen
    )
    return data[:offset] + directory + record + data[end + 22 :]


def _raw_names(data: bytes, names: dict[int, bytes], utf8: bool = False) -> bytes:
    """Members renamed to raw bytes, with the UTF-8 flag set or cleared."""

    def change(i: int, entry: dict[str, Any]) -> None:
        if i in names:
            entry["name"] = names[i]
            flags = entry["fields"][5]
            entry["fields"][5] = flags | 0x800 if utf8 else flags & ~0x800

    return _rewrite(data, change)


def _link_and_encrypted(i: int, entry: dict[str, Any]) -> None:
    if i == 1:
        entry["fields"][17] = 0o120777 << 16  # a symbolic link's mode
    elif i == 2:
        entry["fields"][5] |= 0x1  # encrypted


def _version_99(i: int, entry: dict[str, Any]) -> None:
    entry["fields"][3] = 99  # needs version 9.9 to extract: zipfile reads up to 6.3


def _sizes_in_zip64_extra(i: int, entry: dict[str, Any]) -> None:
    entry["extra"] += struct.pack("<HHQ", 1, 8, entry["fields"][11])
    entry["fields"][11] = 0xFFFFFFFF


def _cases(photo: bytes) -> dict[str, bytes]:
    big = photo + b"\0" * 4000  # declared larger than the per-file limit below
    plain = _zip([("a.jpg", photo), ("shop/b.PNG", photo), ("shop/", b""), ("c.webp", photo)])
    cases = {
        "plain": plain,
        "junk and hidden": _zip(
            [
                ("a.jpg", photo),
                ("__MACOSX/._a.jpg", photo),
                ("shop/._b.jpg", photo),
                ("shop/.DS_Store", b"x"),
                ("Thumbs.db", b"x"),
                (".hidden.jpg", photo),
                ("folder/.cache/c.jpg", photo),
                ("notes.txt", b"hello"),
                ("nested.zip", plain),
                ("noext", photo),
                ("d.jpeg", photo),
            ]
        ),
        "unsafe paths": _zip(
            [
                ("../up.jpg", photo),
                ("/abs.jpg", photo),
                ("C:/drive.jpg", photo),
                ("a/../b.jpg", photo),
                ("./ok.jpg", photo),
                ("back\\slash.jpg", photo),
                ("x" * 1030 + ".jpg", photo),
            ]
        ),
        "duplicates and sizes": _zip(
            [
                ("a.jpg", photo),
                ("a.jpg", photo),
                ("./a.jpg", photo),
                ("b.jpg", big),
                ("c.jpg", photo),
            ]
        ),
        "a comment": _zip([("a.jpg", photo), ("b.jpg", photo)], comment=b"PK made by hand"),
        "links and encrypted": _rewrite(
            _zip([("a.jpg", photo), ("link.jpg", b"a.jpg"), ("secret.jpg", photo)]),
            _link_and_encrypted,
        ),
        "names without the UTF-8 flag": _raw_names(
            _zip([(f"n{i}.jpg", photo) for i in range(8)]),
            {
                0: "鞋子/商品.jpg".encode("gbk"),
                1: "Müller.jpg".encode("cp437"),
                2: "照片.jpg".encode(),  # UTF-8 without the flag
                3: "\u3000.hidden.jpg".encode("gbk"),  # an ideographic space, trimmed
                4: b"\xff.nbsp.jpg",  # CP437's no-break space, trimmed: hidden
                5: b"\xa1\x80bad.jpg",  # not GBK for Python: CP437
                6: "鞋子/商品.jpg".encode(),  # the same path as 0: a duplicate
                7: b"\xaa\xa1pua.jpg",  # GBK's user area, undefined for Python
            },
        ),
        "invisible characters": _zip(
            [("a\u202e.jpg", photo), ("a.jpg", photo), ("\u200bb.jpg", photo), ("c\t.jpg", photo)]
        ),
        "flagged UTF-8 that is not": _raw_names(
            _zip([("ab.jpg", photo)]), {0: b"\xff\xfe.jpg"}, True
        ),
        # zipfile cuts a name at its first NUL: nothing is left of these, and the server
        # refuses the archive (invalid_archive; it raised IndexError before).
        "a name starting with NUL": _raw_names(
            _zip([("a.jpg", photo), ("b.jpg", photo)]), {0: b"\x00.jpg"}
        ),
        "a name of only NUL": _raw_names(_zip([("a.jpg", photo), ("b", photo)]), {1: b"\x00"}),
        "a version no reader knows": _rewrite(_zip([("a.jpg", photo)]), _version_99),
        "not a zip": b"PK\x03\x04" + b"\x00" * 200,
        "empty zip": _zip([]),
        "too many members": _zip([(f"{i}.jpg", b"") for i in range(2 * 3 + 1000 + 1)]),
        "concatenated": b"#!/bin/sh\nexit 0\n" + plain,
    }
    # ZIP64: sizes in the extra field, and a ZIP64 end record.
    cases["zip64 sizes"] = _rewrite(
        _zip([("a.jpg", photo), ("b.jpg", big), ("c.jpg", photo)]), _sizes_in_zip64_extra
    )
    limit = zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP_FILECOUNT_LIMIT = 0  # type: ignore[misc]  # a ZIP64 end record however few
    try:
        cases["zip64 end record"] = _zip([("a.jpg", photo), ("b.jpg", photo)])
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = limit  # type: ignore[misc]
    assert b"PK\x06\x06" in cases["zip64 end record"]
    # batches/zipdir.py's strict reading: what it refuses, the page cannot count either.
    zip64 = cases["zip64 end record"]
    cases |= {
        "zip64 after a prefix": b"MZ self-extractor " * 10 + zip64,
        "zip64 end record disagreeing": _set(zip64, b"PK\x05\x06", 10, "<H", 1),
        "zip64 locator pointing elsewhere": _set(zip64, b"PK\x06\x07", 8, "<Q", 3),
        "zip64 record with extensible data": _set(zip64, b"PK\x06\x06", 4, "<Q", 60),
        "end record bytes in the comment": _zip([("a.jpg", photo)], comment=b"x PK\x05\x06 y"),
        "a whole record hiding in the comment": _zip(
            [("a.jpg", photo)], comment=b"PK\x05\x06" + b"\0" * 18
        ),
        "a comment of 65535 bytes": _zip([("a.jpg", photo)], comment=b"c" * 0xFFFF),
        "cut off in the comment": _zip([("a.jpg", photo)], comment=b"0123456789")[:-4],
        "bytes after the comment": _zip([("a.jpg", photo)], comment=b"note") + b"\r\n",
        "more entries declared than held": _set(plain, b"PK\x05\x06", 10, "<H", 5),
        "a split archive": _set(plain, b"PK\x05\x06", 4, "<H", 1),
        "a directory ending inside a header": _set(plain, b"PK\x05\x06", 12, "<L", 50),
    }
    return cases


def _set(data: bytes, signature: bytes, offset: int, fmt: str, value: int) -> bytes:
    """One field of the last record with `signature` changed."""
    out = bytearray(data)
    struct.pack_into(fmt, out, out.rindex(signature) + offset, value)
    return bytes(out)


def _server_count(data: bytes, settings: Settings) -> int | None:
    try:
        return service.count_zip_images(io.BytesIO(data), settings)
    except service.BatchError:
        return None


def test_the_page_counts_a_zips_images_as_the_server_does(
    server: LiveServer, page: Any, tmp_path: Path
) -> None:
    """Each archive counted in Chromium by batch.js and on the server by count_zip_images:
    the same number, or the same refusal to read it."""
    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=5)
    finally:
        ctx.close()
    _sign_in(page, server, lambda text, **values: text.format(**values) if values else text)
    photo = small_photo(photo_paths(1)[0], 64)
    limits = server.settings.model_copy(
        update={"max_upload_bytes": len(photo) + 1000, "batch_max_items": 3}
    )
    cases = _cases(photo)
    in_browser = page.evaluate(
        """async ([cases, maxBytes, maxItems]) => {
            const out = {};
            for (const [name, b64] of Object.entries(cases)) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const file = new File([bytes], name + ".zip");
                out[name] = await window.RemoveAny.countZipImages(file, maxBytes, maxItems);
            }
            return out;
        }""",
        [
            {name: base64.b64encode(data).decode() for name, data in cases.items()},
            limits.max_upload_bytes,
            limits.batch_max_items,
        ],
    )
    on_server = {name: _server_count(data, limits) for name, data in cases.items()}
    assert in_browser == on_server
    # The cases do reach the rules they are named after.
    assert on_server["plain"] == 3
    assert on_server["junk and hidden"] == 2
    assert on_server["duplicates and sizes"] == 2
    assert on_server["links and encrypted"] == 1
    assert on_server["names without the UTF-8 flag"] == 5
    assert on_server["zip64 sizes"] == 2
    assert on_server["not a zip"] is None and on_server["too many members"] is None
    assert on_server["a name starting with NUL"] is None
    assert on_server["a name of only NUL"] is None
    assert on_server["a version no reader knows"] is None
    assert on_server["zip64 after a prefix"] == 2 and on_server["a comment of 65535 bytes"] == 1
    refused = [
        "zip64 end record disagreeing",
        "zip64 locator pointing elsewhere",
        "zip64 record with extensible data",
        "end record bytes in the comment",
        "a whole record hiding in the comment",
        "cut off in the comment",
        "bytes after the comment",
        "more entries declared than held",
        "a split archive",
        "a directory ending inside a header",
    ]
    assert [name for name in refused if on_server[name] is not None] == []

    # A browser that cannot read a chosen file counts loose images by name, as before, and
    # says a ZIP's images are counted on upload.
    from playwright.sync_api import expect

    archive, loose = tmp_path / "shop.zip", tmp_path / "a.jpg"
    archive.write_bytes(cases["plain"])
    loose.write_bytes(photo)
    page.evaluate("() => { Blob.prototype.arrayBuffer = undefined; }")
    page.locator("#batch-files").set_input_files([str(archive), str(loose)])
    expect(page.locator("#batch-estimate")).to_have_text(
        "1 to 2 credits for 1 image, depending on the size of its result. The ZIP's images are "
        "counted when it is uploaded."
    )
    assert page.problems == []


@both_languages
def test_a_zip_the_balance_cannot_pay_is_warned_about_before_it_is_sent(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    """Three photos in a ZIP (with a folder, a text file and macOS's junk) for a balance of
    two: the page counts three images and warns as the ZIP is chosen; sent anyway, the server
    refuses it with 402 once it has arrived, and stores nothing."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=2)
    finally:
        ctx.close()
    _sign_in(page, server, tr)
    photos = [small_photo(path, 200) for path in photo_paths(3)]
    archive = tmp_path / "shop.zip"
    archive.write_bytes(
        _zip(
            [
                ("shop/", b""),
                ("shop/a.jpg", photos[0]),
                ("shop/b.jpg", photos[1]),
                ("c.jpg", photos[2]),
                ("__MACOSX/shop/._a.jpg", b"junk"),
                ("notes.txt", b"prices"),
            ]
        )
    )
    page.get_by_label(tr("Images or a ZIP")).set_input_files(str(archive))
    expect(page.locator("#batch-estimate")).to_have_text(
        tr(
            "{low} to {high} credits for {count} images, depending on the size of each result.",
            low=3,
            high=6,
            count=3,
        )
    )
    expect(page.locator("#batch-short")).to_have_text(
        tr(
            "These images need about {credits} credits and your balance is {balance}. Buy "
            "credits on the Credits page (/credits) or choose fewer images.",
            credits=3,
            balance=2,
        )
    )
    # One photo more beside the ZIP: counted with it.
    loose = tmp_path / "d.jpg"
    loose.write_bytes(photos[0])
    page.get_by_label(tr("Images or a ZIP")).set_input_files([str(archive), str(loose)])
    expect(page.locator("#batch-estimate")).to_have_text(
        tr(
            "{low} to {high} credits for {count} images, depending on the size of each result.",
            low=4,
            high=8,
            count=4,
        )
    )
    page.get_by_label(tr("Images or a ZIP")).set_input_files(str(archive))
    expect(page.locator("#batch-estimate")).to_have_text(
        tr(
            "{low} to {high} credits for {count} images, depending on the size of each result.",
            low=3,
            high=6,
            count=3,
        )
    )

    page.get_by_role("button", name=tr("Start batch")).click()
    expect(page.get_by_role("alert")).to_have_text(tr(SHORT, needed=3, s="s", available=2))
    ctx = build_context(server.settings)
    try:
        with ctx.db.transaction() as session:
            assert session.query(Batch).count() == 0
    finally:
        ctx.close()
    originals = server.settings.files_dir / "originals"
    assert not originals.exists() or not any(originals.iterdir())
    assert [p for p in page.problems if "status of 402" not in p] == []


@both_languages
def test_the_batch_form_says_what_each_service_and_size_costs(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    """The size menu's prices were the first service's, whatever service was chosen after,
    and the hint and estimate said the size's tier price ("About 6 credits for 2 images" at
    full size) though each image is charged by its result's size (a small one the preview
    price, one over 25 MP the 50MP price). batch.js now shows the chosen service's prices
    in the menu, each price with where it applies, and the least and most the images cost."""
    from playwright.sync_api import expect

    from removeany.catalog import prices

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=20)
        with ctx.db.transaction() as session:
            for tier, credits in (("preview", 1), ("full", 3), ("50MP", 5)):
                prices.set_price(
                    session, "remove_background", tier, credits, now=ctx.now(), admin_id=None
                )
    finally:
        ctx.close()
    _sign_in(page, server, tr)

    def credits(n: int, where: str, limit: str) -> str:
        one = "1 credit up to {limit}" if where == "up" else "1 credit over {limit}"
        many = "{n} credits up to {limit}" if where == "up" else "{n} credits over {limit}"
        return tr(one if n == 1 else many, n=n, limit=limit)

    every = tr(", ").join(
        [credits(1, "up", "0.25 MP"), credits(3, "up", "25 MP"), credits(5, "over", "25 MP")]
    )
    hint = page.locator("#batch-price")
    size = page.locator("#batch-size")
    expect(hint).to_have_text(tr("Price per image: {prices}.", prices=every))
    full = size.locator("option[value='full']")
    expect(full).to_have_text(
        tr("Full resolution") + " · " + tr("{low} to {high} credits", low=1, high=5)
    )
    photos = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for path, source in zip(photos, photo_paths(2), strict=True):
        path.write_bytes(small_photo(source, 200))
    page.get_by_label(tr("Images or a ZIP")).set_input_files([str(p) for p in photos])
    estimate = page.locator("#batch-estimate")
    expect(estimate).to_have_text(
        tr(
            "{low} to {high} credits for {count} images, depending on the size of each result.",
            low=2,
            high=10,
            count=2,
        )
    )

    size.select_option("preview")
    expect(hint).to_have_text(tr("Price: 1 credit per image."))
    expect(estimate).to_have_text(
        tr("About {credits} credits for {count} images.", credits=2, count=2)
    )

    # Portrait keeps the seed prices (1, 1, 2): the menu follows the service.
    page.get_by_label(tr("Service"), exact=True).select_option("portrait")
    expect(full).to_have_text(
        tr("Full resolution") + " · " + tr("{low} to {high} credits", low=1, high=2)
    )
    expect(size.locator("option[value='hd']")).to_have_text(
        tr("HD (up to 4 MP)") + " · " + tr("1 credit")
    )
    size.select_option("full")
    expect(hint).to_have_text(
        tr(
            "Price per image: {prices}.",
            prices=tr(", ").join([credits(1, "up", "25 MP"), credits(2, "over", "25 MP")]),
        )
    )
    assert page.problems == []
