"""ZIPs whose central directory is hostile, crafted byte by byte (zipfile will not write
them): a member whose name is empty or starts with a NUL byte, a version no reader knows,
and members that point at missing, damaged or oddly compressed data. Each entry point
(the JSON API, the /batches form, `removeany batch`) refuses an unreadable archive with
`invalid_archive` and a sentence saying what to do, storing and charging nothing; an
unreadable member is skipped with its reason. Before, zipfile's IndexError (the nameless
member), NotImplementedError (the version) and its read errors were 500s."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from removeany.batches import service, zipdir
from removeany.context import Context
from removeany.infra.settings import Settings
from tests.batches._images import photo_paths, small_photo
from tests.batches._ledger import audit
from tests.batches.test_batch_cli import accept_terms, run_cli
from tests.helpers import make_api_key, make_user, wait_for_batch
from tests.web.test_pages import form_token, login, text_of

REFUSAL = "The archive is not a valid ZIP file. Create it again and re-upload it."


def _zip(members: list[tuple[str, bytes]]) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def _headers(data: bytearray) -> list[tuple[int, int]]:
    """(local header, central header) offsets of each member, in order."""
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    out, at = [], archive.start_dir
    for info in archive.infolist():
        out.append((info.header_offset, at))
        name, extra, comment = struct.unpack_from("<3H", data, at + 28)
        at += 46 + name + extra + comment
    return out


def renamed(data: bytearray, index: int, raw: bytes) -> bytes:
    """Member `index` renamed to `raw` (of the same length) in its local header and in the
    central directory."""
    local, central = _headers(data)[index]
    length = struct.unpack_from("<H", data, local + 26)[0]
    assert len(raw) == length
    data[local + 30 : local + 30 + length] = raw
    data[central + 46 : central + 46 + length] = raw
    return bytes(data)


def central(data: bytearray, index: int, offset: int, fmt: str, value: int) -> bytes:
    """Member `index` with one field of its central directory entry changed."""
    struct.pack_into(fmt, data, _headers(data)[index][1] + offset, value)
    return bytes(data)


def unreadable_archives(photo: bytes) -> dict[str, bytes]:
    return {
        "a name starting with NUL": renamed(
            _zip([("a.jpg", photo), ("b.jpg", photo)]), 0, b"\0.jpg"
        ),
        "a name of only NUL": renamed(_zip([("b.jpg", photo), ("a", photo)]), 1, b"\0"),
        "a version no reader knows": central(_zip([("a.jpg", photo)]), 0, 6, "<H", 99),
    }


@pytest.fixture
def photo() -> bytes:
    return small_photo(photo_paths(1)[0], 160)


@pytest.mark.parametrize(
    "case", ["a name starting with NUL", "a name of only NUL", "a version no reader knows"]
)
def test_counting_and_reading_refuse_an_unreadable_directory(photo: bytes, case: str) -> None:
    data = unreadable_archives(photo)[case]
    for read in (
        lambda f: service.count_zip_images(f, Settings()),
        lambda f: list(service.entries_from_zip(f, Settings())),
    ):
        with pytest.raises(service.BatchError) as refused:
            read(io.BytesIO(data))
        assert refused.value.code == "invalid_archive" and refused.value.message == REFUSAL


def _nothing_stored_or_charged(ctx: Context, user_id: int, credits: int) -> None:
    ledger = audit(ctx, user_id)
    assert not ledger["jobs"] and ledger["available"] == credits and ledger["held"] == 0
    originals = ctx.settings.files_dir / "originals"
    assert not originals.exists() or not any(originals.iterdir())


def test_the_api_refuses_an_unreadable_archive(
    client: TestClient, ctx: Context, photo: bytes
) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    for case, data in unreadable_archives(photo).items():
        response = client.post(
            "/api/v1/batches",
            headers=headers,
            files={"archive": ("x.zip", data, "application/zip")},
        )
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"] == {"code": "invalid_archive", "message": REFUSAL}, case
    _nothing_stored_or_charged(ctx, user.id, 5)


def test_the_batch_form_refuses_an_unreadable_archive(
    client: TestClient, ctx: Context, photo: bytes
) -> None:
    user = make_user(ctx, credits=5)
    login(client, "ada@example.com")
    for case, data in unreadable_archives(photo).items():
        token = form_token(client.get("/batches").text)
        response = client.post(
            "/batches",
            data={"csrf_token": token},
            files=[("files", ("shop.zip", data, "application/zip"))],
            follow_redirects=False,
        )
        assert response.status_code == 400, (case, response.status_code)
        assert REFUSAL in text_of(response.text), case
    _nothing_stored_or_charged(ctx, user.id, 5)


def test_the_batch_command_refuses_an_unreadable_archive(
    tmp_path: Path, model_dir: Path, photo: bytes
) -> None:
    data = tmp_path / "data"
    made = run_cli(
        "users", "create", "ops@example.com", "--password", "long enough pw", "--credits", "5",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    accept_terms(data, "ops@example.com")
    for case, archive in unreadable_archives(photo).items():
        source = tmp_path / "shop.zip"
        source.write_bytes(archive)
        refused = run_cli(
            "batch", str(source), "--email", "ops@example.com",
            data_dir=data, model_dir=model_dir,
        )  # fmt: skip
        assert refused.returncode == 2, (case, refused.stderr)
        assert refused.stderr.strip() == f"error: {REFUSAL}", case
        assert "Traceback" not in refused.stderr
    originals = data / "files" / "originals"
    assert not originals.exists() or not any(originals.iterdir())


def _damaged_members(photo: bytes) -> bytes:
    """A good photo, then members whose directory entries point at data that cannot be read:
    a wrong CRC, an unsupported compression method (Deflate64, as Windows writes for large
    files), data that is not the Deflate it claims, and a local header that is not there."""
    names = ["good.jpg", "crc.jpg", "deflate64.jpg", "garbage.jpg", "nowhere.jpg"]
    data = _zip([(name, photo) for name in names])
    changes: list[tuple[int, int, str, int]] = [
        (1, 16, "<L", 1),  # CRC-32
        (2, 10, "<H", 9),  # method: Deflate64
        (3, 10, "<H", 8),  # method: Deflate, over stored bytes
        (4, 42, "<L", 5),  # local header offset: inside the first member
    ]
    for index, offset, fmt, value in changes:
        data = bytearray(central(data, index, offset, fmt, value))
    return bytes(data)


def test_an_unreadable_member_is_skipped_with_its_reason(
    client: TestClient, ctx: Context, photo: bytes
) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        files={"archive": ("x.zip", _damaged_members(photo), "application/zip")},
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["total"] == 1
    rejected = {r["path"]: r["code"] for r in created["rejected"]}
    assert rejected == dict.fromkeys(
        ["crc.jpg", "deflate64.jpg", "garbage.jpg", "nowhere.jpg"], "unreadable_entry"
    )
    assert all("re-upload" in r["message"] for r in created["rejected"])
    batch = wait_for_batch(client, created["id"], headers)
    assert batch["counts"]["succeeded"] == 1
    assert audit(ctx, user.id)["available"] == 4


def test_only_unreadable_members_is_an_empty_batch(
    client: TestClient, ctx: Context, photo: bytes
) -> None:
    user = make_user(ctx, credits=5)
    login(client, "ada@example.com")
    data = bytearray(_damaged_members(photo))
    archive = central(data, 0, 16, "<L", 1)  # the good photo's CRC too
    token = form_token(client.get("/batches").text)
    response = client.post(
        "/batches",
        data={"csrf_token": token},
        files=[("files", ("shop.zip", archive, "application/zip"))],
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert "The upload holds no image we can process" in text_of(response.text)
    _nothing_stored_or_charged(ctx, user.id, 5)


def _many_directory_entries(count: int) -> bytes:
    """One small member and a central directory of `count` entries all pointing at it: about
    47 bytes of upload per entry, each of which zipfile makes a ZipInfo of."""
    data = bytes(_zip([("a", b"x")]))
    end = data.rindex(b"PK\x05\x06")
    offset = struct.unpack_from("<L", data, end + 16)[0]
    directory = data[offset:end] * count
    record = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), offset, 0
    )  # the counts are the most a record can say: zipfile does not read them
    return data[:offset] + directory + record


def test_a_directory_of_too_many_entries_is_refused_before_it_is_read(
    client: TestClient, ctx: Context
) -> None:
    """A 9 MB ZIP of 200,000 directory entries made zipfile build 200,000 ZipInfo objects
    (about 110 MB, 1.3 s; the 2 GiB batch limit allows 45 million: tens of GB) before the
    count was checked. The entries are now counted from their headers first, up to the
    limit."""
    import tracemalloc

    settings = Settings()
    limit = 2 * settings.batch_max_items + 1000
    data = _many_directory_entries(200_000)
    tracemalloc.start()
    try:
        with pytest.raises(service.BatchTooLarge):
            service.count_zip_images(io.BytesIO(data), settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, peak
    # The limit itself is unchanged: one entry fewer is read as before.
    at_limit = _many_directory_entries(limit)
    assert service.count_zip_images(io.BytesIO(at_limit), settings) == 0  # all named "a"
    with pytest.raises(service.BatchTooLarge):
        service.count_zip_images(io.BytesIO(_many_directory_entries(limit + 1)), settings)

    user = make_user(ctx, credits=5)
    response = client.post(
        "/api/v1/batches",
        headers={"X-Api-Key": make_api_key(ctx, user)},
        files={"archive": ("x.zip", data, "application/zip")},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "batch_too_large"
    _nothing_stored_or_charged(ctx, user.id, 5)


def test_the_directory_is_counted_where_zipfile_reads_it() -> None:
    """The count before zipfile's agrees with zipfile wherever the directory is: after a
    prefix (a self-extractor's), before a comment, behind a ZIP64 end record."""
    members = [(f"{i}.jpg", b"x" * i) for i in range(7)]
    plain = bytes(_zip(members))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.comment = b"made by hand"
    limit = zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP_FILECOUNT_LIMIT = 0  # type: ignore[misc]  # a ZIP64 end record however few
    try:
        zip64 = bytes(_zip(members))
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = limit  # type: ignore[misc]
    assert b"PK\x06\x06" in zip64
    for data in (plain, b"#!/bin/sh\nexit 0\n" + plain, buffer.getvalue(), zip64):
        assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 7
        found = zipdir.find(io.BytesIO(data))
        assert found.start == zipfile.ZipFile(io.BytesIO(data)).start_dir
        assert zipdir.count_entries(io.BytesIO(data), found, 100) == 7
        assert zipdir.count_entries(io.BytesIO(data), found, 3) == 3
    with pytest.raises(zipdir.Malformed):
        zipdir.find(io.BytesIO(b"PK\x03\x04 not a zip"))
