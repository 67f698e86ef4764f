"""`removeany batch FOLDER`: an operator processes a folder for a user, as a real process."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

from PIL import Image

from removeany.accounts import repository as accounts_repo
from removeany.context import build_context
from removeany.infra.settings import Settings
from removeany.legal import service as legal
from tests.batches._images import photo_paths, plain_image, small_photo
from tests.helpers import removeany


def run_cli(*args: str, data_dir: Path, model_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REMOVEANY_")},
        "REMOVEANY_DATA_DIR": str(data_dir),
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_INLINE_WORKERS": "2",
    }
    return removeany(*args, env=env)


def accept_terms(data: Path, email: str) -> None:
    ctx = build_context(Settings(data_dir=data))
    try:
        with ctx.db.transaction() as session:
            user = accounts_repo.user_by_email(session, email)
            assert user is not None
            legal.accept(session, user, legal.current(session).version, now=ctx.now())
    finally:
        ctx.close()


def test_batch_command_processes_a_folder(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "data"
    folder = tmp_path / "shoot"
    (folder / "day1").mkdir(parents=True)
    (folder / ".cache").mkdir()
    photos = photo_paths(2)
    (folder / "day1" / "a.jpg").write_bytes(small_photo(photos[0], 200))
    (folder / "b.jpg").write_bytes(small_photo(photos[1], 200))
    (folder / "flat.png").write_bytes(plain_image())
    (folder / "readme.txt").write_text("not an image")
    (folder / ".cache" / "x.jpg").write_bytes(small_photo(photos[0], 64))
    # Wider than a WebP can be: skipped at upload, rather than held and run.
    Image.new("RGB", (16400, 40), (90, 90, 90)).save(folder / "wide.png")
    made = run_cli(
        "users", "create", "ops@example.com", "--password", "long enough pw", "--credits", "5",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    accept_terms(data, "ops@example.com")
    out = tmp_path / "results.zip"
    done = run_cli(
        "batch", str(folder), "--email", "ops@example.com", "-o", "format=webp",
        "--out", str(out), data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    # One item fails (no subject in a flat colour): exit 1, reported, not charged.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped readme.txt" in done.stderr and "failed flat.png" in done.stderr
    assert "skipped wide.png: A WebP result can be at most 16,383 pixels" in done.stderr
    assert "charged 2 credits" in done.stdout
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["NOT-INCLUDED.txt", "b.webp", "day1/a.webp"]
        note = zf.read("NOT-INCLUDED.txt").decode()
        assert "- flat.png: failed, not charged." in note and "- readme.txt: skipped" in note
        assert "- wide.png: skipped" in note
        with Image.open(io.BytesIO(zf.read("day1/a.webp"))) as im:
            assert im.mode == "RGBA"
    missing = run_cli(
        "batch", str(folder), "--email", "nobody@example.com", data_dir=data, model_dir=model_dir
    )
    assert missing.returncode == 2 and "no user" in missing.stderr
    # ... said before the folder is read (its readme.txt would be reported as skipped).
    assert "skipped" not in missing.stderr


def test_batch_results_go_where_out_says_or_nothing_is_charged(
    tmp_path: Path, model_dir: Path
) -> None:
    """--out in a folder not made yet gets the ZIP (it crashed after charging); --out naming a
    folder stops before the batch is submitted. Progress goes to stderr, results to stdout."""
    data = tmp_path / "data"
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(small_photo(photo_paths(1)[0], 200))
    made = run_cli(
        "users", "create", "ops@example.com", "--password", "long enough pw", "--credits", "5",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    accept_terms(data, "ops@example.com")
    refused = run_cli(
        "batch", str(folder), "--email", "ops@example.com", "--out", str(tmp_path),
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert refused.returncode == 2 and f"--out {tmp_path} is a folder" in refused.stderr
    assert refused.stdout == ""
    out = tmp_path / "not" / "yet" / "results.zip"
    done = run_cli(
        "batch", str(folder), "--email", "ops@example.com", "--out", str(out),
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["a.png"]
    assert "1/1 done" in done.stderr and "done:" not in done.stdout
    assert "charged 1 credit\n" in done.stdout


def test_a_photo_skipped_at_upload_is_a_failed_input(tmp_path: Path, model_dir: Path) -> None:
    """The README's exit codes, the same for every command: 1 when some inputs failed, each
    named on stderr, the others written. A photo the batch skips at upload (here a corrupt
    JPEG) was such an input, yet the command ended 0; a file that is no image by its name
    (notes.txt) is still only left out, as the offline commands leave it out."""
    data = tmp_path / "data"
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(small_photo(photo_paths(1)[0], 200))
    (folder / "broken.jpg").write_bytes(b"not a photo")
    (folder / "notes.txt").write_text("not an image")
    made = run_cli(
        "users", "create", "ops@example.com", "--password", "long enough pw", "--credits", "5",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    accept_terms(data, "ops@example.com")
    done = run_cli(
        "batch", str(folder), "--email", "ops@example.com", data_dir=data, model_dir=model_dir
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped broken.jpg: The file is not a supported image" in done.stderr
    assert "1/1 done: 1 succeeded" in done.stderr and "charged 1 credit\n" in done.stdout

    (folder / "broken.jpg").unlink()
    done = run_cli(
        "batch", str(folder), "--email", "ops@example.com", data_dir=data, model_dir=model_dir
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped notes.txt" in done.stderr
