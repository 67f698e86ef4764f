"""The `removeany` command as operators and scripts run it: a real process, a real database."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, text

from tests.conftest import eval_image
from tests.helpers import closed_port, removeany, serving


def run_cli(
    *args: str, data_dir: Path, model_dir: Path, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command with the data and model folders, the operator's environment without a
    REMOVEANY_BASE_URL of its own, and `settings` (REMOVEANY_* variables) on top."""
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data_dir), "REMOVEANY_MODEL_DIR": str(model_dir)}
    env.pop("REMOVEANY_BASE_URL", None)
    env.update(settings or {})
    return removeany(*args, env=env)


def test_users_create_prints_the_api_key_last(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("migrate", data_dir=data, model_dir=model_dir).returncode == 0
    done = run_cli(
        "users",
        "create",
        "ops@example.com",
        "--password",
        "long enough pw",
        "--credits",
        "25",
        "--admin",
        "--api-key",
        data_dir=data,
        model_dir=model_dir,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("rak_")
    engine = create_engine(f"sqlite:///{data / 'removeany.db'}")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT is_admin, email_verified_at IS NOT NULL FROM users")).one()
        remaining = conn.execute(text("SELECT SUM(remaining) FROM credit_lots")).scalar()
        accepted = conn.execute(text("SELECT version, ip FROM terms_acceptances")).all()
        published = conn.execute(text("SELECT version FROM legal_versions")).all()
    engine.dispose()
    assert tuple(row) == (1, 1) and remaining == 25
    # An operator-provisioned account can use its key at once: the acceptance is on record.
    # The first operator command on a new installation published the built-in terms (version
    # 2, no version 1 that never applied there), which the account was given as accepted.
    assert [tuple(r) for r in accepted] == [(2, "cli")] and [tuple(r) for r in published] == [(2,)]
    again = run_cli(
        "users",
        "create",
        "OPS@example.com",
        "--password",
        "long enough pw",
        data_dir=data,
        model_dir=model_dir,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    personal = run_cli(
        "users",
        "create",
        "someone@example.com",
        "--password",
        "long enough pw",
        "--no-accept-terms",
        data_dir=data,
        model_dir=model_dir,
    )
    assert personal.returncode == 0, personal.stderr
    engine = create_engine(f"sqlite:///{data / 'removeany.db'}")
    with engine.connect() as conn:
        acceptances = conn.execute(text("SELECT COUNT(*) FROM terms_acceptances")).scalar()
    engine.dispose()
    assert acceptances == 1


def test_remove_background_command_writes_rgba_png(tmp_path: Path, model_dir: Path) -> None:
    source = eval_image("object", "alphamatting_GT04")
    out = tmp_path / "out.png"
    done = run_cli(
        "remove-background", str(source), "-o", str(out), data_dir=tmp_path, model_dir=model_dir
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as result, Image.open(source) as original:
        assert result.mode == "RGBA" and result.size == original.size


def test_remove_background_command_fails_naming_the_bad_input(
    tmp_path: Path, model_dir: Path
) -> None:
    good = eval_image("object", "alphamatting_GT05")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = run_cli(
        "remove-background",
        str(good),
        str(bad),
        "-o",
        str(tmp_path / "out"),
        data_dir=tmp_path,
        model_dir=model_dir,
    )
    assert done.returncode != 0
    assert "broken.jpg" in done.stderr
    assert (tmp_path / "out" / "alphamatting_GT05.png").is_file()


def test_prices_promo_and_sweep_commands(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "data"
    changed = run_cli(
        "prices",
        "set",
        "remove_background",
        "full",
        "3",
        "--note",
        "test",
        data_dir=data,
        model_dir=model_dir,
    )
    assert changed.returncode == 0, changed.stderr
    assert "3 credits (v2)" in changed.stdout
    listed = run_cli("prices", "list", data_dir=data, model_dir=model_dir).stdout
    assert "remove_background\tfull\t3\tv2" in listed
    bad = run_cli(
        "prices", "set", "remove_background", "huge", "3", data_dir=data, model_dir=model_dir
    )
    assert bad.returncode == 2 and "Unknown tier" in bad.stderr
    promo = run_cli(
        "promo-create",
        "spring",
        "--credits",
        "5",
        "--max-uses",
        "10",
        data_dir=data,
        model_dir=model_dir,
    )
    assert promo.returncode == 0 and "SPRING" in promo.stdout
    closed = run_cli("promo-close", " Spring ", data_dir=data, model_dir=model_dir)
    assert closed.returncode == 0 and "closed SPRING: 0 of 10 uses" in closed.stdout
    swept = run_cli("sweep", data_dir=data, model_dir=model_dir)
    assert swept.returncode == 0 and "expired 0 credits" in swept.stdout


def test_counts_of_one_read_in_the_singular(tmp_path: Path, model_dir: Path) -> None:
    """The operator commands printed "1 credits" and "1 uses"; a count of one now takes the
    singular, and other counts keep the plural."""
    data = tmp_path / "data"
    changed = run_cli(
        "prices", "set", "remove_background", "full", "1", data_dir=data, model_dir=model_dir
    )
    assert changed.stdout == "remove_background full: 1 credit (v2)\n", changed.stderr
    promo = run_cli(
        "promo-create", "solo", "--credits", "1", "--max-uses", "1",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert promo.stdout == "created SOLO: 1 credit x 1 use\n", promo.stderr
    closed = run_cli("promo-close", "solo", data_dir=data, model_dir=model_dir)
    assert closed.stdout == "closed SOLO: 0 of 1 use redeemed\n", closed.stderr
    made = run_cli(
        "users", "create", "one@example.com", "--password", "long enough pw", "--credits", "1",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert "granted 1 credit, expiring" in made.stdout, made.stderr
    swept = run_cli("sweep", data_dir=data, model_dir=model_dir)
    assert swept.stdout.startswith("expired 0 credits, released 0 held credits, sent 0 expiry")


def test_serve_on_another_port_emails_links_to_that_port(tmp_path: Path, model_dir: Path) -> None:
    """`removeany serve --port N` (the README's way round a busy port 8000) without
    REMOVEANY_BASE_URL: the verification link must open on port N, not 8000."""
    data = tmp_path / "data"
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data), "REMOVEANY_MODEL_DIR": str(model_dir)}
    env.pop("REMOVEANY_BASE_URL", None)
    with serving(env, "--no-workers") as base:
        body = {"email": "new@example.com", "password": "a long enough pw", "accept_terms": True}
        request = urllib.request.Request(
            f"{base}/api/v1/auth/register",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202  # the same answer for a taken address
        link = re.search(r"\S+/verify\?token=\S+", _outbox_text(data))
        assert link is not None and link.group(0).startswith(f"{base}/verify?token=")
        with urllib.request.urlopen(link.group(0), timeout=30) as opened:
            assert opened.status == 200


def test_operator_commands_email_links_to_the_served_port(tmp_path: Path, model_dir: Path) -> None:
    """Without REMOVEANY_BASE_URL, the emails of the commands an operator runs beside
    `serve --port N` (publish-terms, sweep's expiry warnings) and their refusals linked to
    http://127.0.0.1:8000, where nothing answers: they now use the address the last `serve`
    of the data folder linked to."""
    data = tmp_path / "data"
    made = run_cli(
        "users", "create", "ada@example.com", "--password", "long enough pw",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data), "REMOVEANY_MODEL_DIR": str(model_dir)}
    env.pop("REMOVEANY_BASE_URL", None)
    with serving(env, "--no-workers") as base:
        pass
    texts = tmp_path / "terms"
    written = run_cli("admin", "builtin-terms", str(texts), data_dir=data, model_dir=model_dir)
    assert written.returncode == 0, written.stderr
    published = run_cli(
        "admin", "publish-terms", str(texts), "--summary", "Clearer refunds.",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert published.stdout == "published version 3; notified 1 user\n", published.stderr
    links = re.findall(r"https?://[^\s/]+/legal/accept", _outbox_text(data))
    assert links and set(links) == {f"{base}/legal/accept"}
    granted = run_cli(
        "admin", "credits", "--reason", "trial", "--days", "2", "ada@example.com", "5",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    swept = run_cli("sweep", data_dir=data, model_dir=model_dir)
    assert "sent 1 expiry warning" in swept.stdout, swept.stderr
    assert f"Your credits: {base}/billing" in _outbox_text(data)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(eval_image("object", "alphamatting_GT04"), photos)
    refused = run_cli(
        "batch", str(photos), "--email", "ada@example.com", data_dir=data, model_dir=model_dir
    )
    assert refused.returncode == 2
    assert f"open {base}/legal/accept on the website" in refused.stderr


def test_mail_sent_by_smtp_needs_an_address_its_readers_can_open(
    tmp_path: Path, model_dir: Path
) -> None:
    """With REMOVEANY_MAIL_BACKEND=smtp the emails go to other people's machines: without
    REMOVEANY_BASE_URL their links would open 127.0.0.1, this machine. `serve` and the
    operator commands refuse to start (exit 2, one line), before anything is published or
    emailed; an address the operator sets, even a local one, is theirs to choose."""
    data = tmp_path / "data"
    smtp = {"REMOVEANY_MAIL_BACKEND": "smtp", "REMOVEANY_SMTP_PORT": str(closed_port())}
    made = run_cli(
        "users", "create", "ada@example.com", "--password", "long enough pw",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    texts = tmp_path / "terms"
    written = run_cli("admin", "builtin-terms", str(texts), data_dir=data, model_dir=model_dir)
    assert written.returncode == 0, written.stderr
    publish = ("admin", "publish-terms", str(texts), "--summary", "Clearer refunds.")
    port = closed_port()
    for args, linked in [
        (publish, "http://127.0.0.1:8000"),  # serve's default: no `serve` ran here yet
        (("serve", "--host", "0.0.0.0", "--port", str(port)), f"http://127.0.0.1:{port}"),
    ]:
        done = run_cli(*args, data_dir=data, model_dir=model_dir, settings=smtp)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.startswith(
            f"error: REMOVEANY_BASE_URL is not set, so emailed links would open {linked}"
        ), done.stderr
        assert len(done.stderr.splitlines()) == 1 and not done.stdout
    engine = create_engine(f"sqlite:///{data / 'removeany.db'}")
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT max(version) FROM legal_versions")).scalar()
        written = conn.execute(text("SELECT count(*) FROM outgoing_mail")).scalar()
    assert (versions, written) == (2, 0)
    local = {**smtp, "REMOVEANY_BASE_URL": "http://127.0.0.1:8000"}
    done = run_cli(*publish, data_dir=data, model_dir=model_dir, settings=local)
    assert done.stdout == "published version 3; notified 1 user\n", done.stderr
    with engine.connect() as conn:
        body = conn.execute(text("SELECT body FROM outgoing_mail")).scalar()
    engine.dispose()
    assert "http://127.0.0.1:8000/legal/accept" in body


def test_a_base_url_the_site_cannot_be_served_at_is_refused(
    tmp_path: Path, model_dir: Path
) -> None:
    """The pages link from the root of their host (/login, /static/app.css): behind a proxy
    that serves them under a path, every one of those links left the site. A
    REMOVEANY_BASE_URL with a path, or one that is no web address, ends `serve` and the
    operator commands with a line saying what to set; a trailing slash is no path."""
    data = tmp_path / "data"
    cases = [
        ("https://example.com/removeany/", "has a path (/removeany/)"),
        ("example.com", "is not a web address"),
    ]
    for url, why in cases:
        for args in (("prices", "list"), ("serve", "--no-workers", "--port", str(closed_port()))):
            done = run_cli(
                *args, data_dir=data, model_dir=model_dir, settings={"REMOVEANY_BASE_URL": url}
            )
            assert done.returncode == 2, (url, args, done.stdout)
            assert done.stderr.startswith(f"error: REMOVEANY_BASE_URL ({url}) {why}"), done.stderr
            assert len(done.stderr.splitlines()) == 1
    listed = run_cli(
        "prices", "list", data_dir=data, model_dir=model_dir,
        settings={"REMOVEANY_BASE_URL": "https://removeany.example.com/"},
    )  # fmt: skip
    assert listed.returncode == 0 and "remove_background" in listed.stdout, listed.stderr


def _outbox_text(data: Path) -> str:
    """The text of every email in the outbox folder, decoded (a Chinese part is
    quoted-printable, which may break a long line, and a link in it, in two)."""
    texts = []
    for path in sorted((data / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        texts.append(str(body.get_content()))
    return "".join(texts)


def test_publish_terms_from_an_incomplete_folder_says_what_is_missing(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = tmp_path / "terms"
    folder.mkdir()
    (folder / "terms_en.md").write_text("# Terms\n", encoding="utf-8")
    (folder / "terms_zh.md").write_bytes(b"\xff\xfe not utf-8")
    for args, named in [
        ((str(tmp_path / "nowhere"),), "nowhere/terms_en.md: No such file"),
        ((str(folder),), f"{folder / 'terms_zh.md'}: not UTF-8"),
    ]:
        done = run_cli(
            "admin",
            "publish-terms",
            *args,
            "--summary",
            "new",
            data_dir=tmp_path / "data",
            model_dir=model_dir,
        )
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert named in done.stderr and "privacy_zh.md" in done.stderr


def test_several_inputs_into_an_existing_file_is_a_usage_error(
    tmp_path: Path, model_dir: Path
) -> None:
    """A folder or several photos need a folder: an existing file as -o ends the command with
    exit 2 and says so, instead of a failure per photo about 'File exists'; the file is kept."""
    taken = tmp_path / "cutout.png"
    taken.write_bytes(b"kept")
    photos = [
        str(eval_image("object", "alphamatting_GT04")),
        str(eval_image("object", "alphamatting_GT05")),
    ]
    for command in ("remove-background", "cutout-portrait", "remove-watermark"):
        done = run_cli(command, *photos, "-o", str(taken), data_dir=tmp_path, model_dir=model_dir)
        assert done.returncode == 2, (command, done.stderr)
        said = " ".join(done.stderr.split())
        assert f"error: output_not_folder: {taken} names a file, and 2 inputs need an output " in (
            said
        )
        assert done.stdout == "" and taken.read_bytes() == b"kept"


def test_help_documents_the_exit_codes(tmp_path: Path, model_dir: Path) -> None:
    done = run_cli("--help", data_dir=tmp_path, model_dir=model_dir)
    assert done.returncode == 0
    assert "Exit codes: 0 done; 1 some inputs failed" in " ".join(done.stdout.split())


def test_each_failure_is_one_line_on_stderr(tmp_path: Path, model_dir: Path) -> None:
    """Scripts read stderr line by line (grep, a CI log): a long path is not wrapped at 80
    columns into two lines when stderr is not a terminal."""
    folder = tmp_path / "a-rather-long-folder-name-as-photo-shoots-tend-to-have" / "day-one"
    folder.mkdir(parents=True)
    bad = folder / "a-photo-whose-upload-was-cut-short.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for command in ("remove-background", "cutout-portrait", "remove-watermark"):
        done = run_cli(
            command, str(bad), "-o", str(tmp_path / "out" / "x.png"),
            data_dir=tmp_path, model_dir=model_dir,
        )  # fmt: skip
        assert done.returncode == 1, (command, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert lines and str(bad) in lines[0] and lines[0].rstrip().endswith("."), done.stderr


def test_a_database_or_port_that_cannot_be_used_is_said_in_a_line(
    tmp_path: Path, model_dir: Path
) -> None:
    """PostgreSQL down, a mistyped URL, a data folder that cannot be made, a port out of range:
    one 'error:' line and exit 2, never a traceback, and never the database password."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    cases = [
        (["migrate"], f"postgresql+psycopg://ops:sekret@127.0.0.1:{closed}/removeany"),
        (["prices", "list"], f"postgresql+psycopg://ops:sekret@127.0.0.1:{closed}/removeany"),
        (["admin", "users"], "bogus://nowhere/db"),
    ]
    for args, url in cases:
        done = subprocess.run(
            [sys.executable, "-m", "removeany", *args],
            env={**os.environ, "REMOVEANY_DATA_DIR": str(tmp_path), "REMOVEANY_DATABASE_URL": url},
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: cannot open the database: "), done.stderr
        assert "Traceback" not in done.stderr and "sekret" not in done.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    no_dir = run_cli("migrate", data_dir=blocked / "data", model_dir=model_dir)
    assert no_dir.returncode == 2 and "check REMOVEANY_DATA_DIR" in no_dir.stderr
    assert "Traceback" not in no_dir.stderr
    port = run_cli("serve", "--port", "99999", data_dir=tmp_path, model_dir=model_dir)
    assert port.returncode == 2 and "Traceback" not in port.stderr
    assert "Invalid value for '--port'" in port.stderr and "65535" in port.stderr


def test_admin_listing_filters_are_checked(tmp_path: Path, model_dir: Path) -> None:
    """A mistyped status or a limit below 1 is refused, not answered with an empty list that
    reads as 'no such users'."""
    data = tmp_path / "data"
    made = run_cli(
        "users", "create", "ops@example.com", "--password", "long enough pw",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = run_cli("admin", "users", "--status", "active", data_dir=data, model_dir=model_dir)
    assert listed.returncode == 0 and "ops@example.com\tactive" in listed.stdout
    typo = run_cli("admin", "users", "--status", "banend", data_dir=data, model_dir=model_dir)
    assert typo.returncode == 2 and typo.stdout == ""
    assert "status must be one of active, restricted, banned, deleted." in typo.stderr
    none = run_cli("admin", "audit", "--limit", "0", data_dir=data, model_dir=model_dir)
    assert none.returncode == 2 and "Invalid value for '--limit'" in none.stderr


def test_the_progress_bar_goes_to_a_terminal_on_stderr_not_into_piped_results(
    tmp_path: Path, model_dir: Path
) -> None:
    """`removeany remove-background photos/ -o out/ | tee log` with stderr on the terminal:
    the bar shows there, and stdout holds only the summary line."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("alphamatting_GT04", "alphamatting_GT05"):
        with Image.open(eval_image("object", name)) as im:
            im.convert("RGB").resize((160, 120)).save(folder / f"{name}.jpg")
    terminal, stderr_end = pty.openpty()
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(tmp_path), "REMOVEANY_MODEL_DIR": str(model_dir)}
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "removeany",
                "remove-background",
                str(folder),
                "-o",
                str(tmp_path / "out"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr_end,
            text=True,
            timeout=300,
            check=False,
        )
        os.close(stderr_end)
        shown = b""
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0
    assert done.stdout == f"2 of 2 images written to {tmp_path / 'out'}\n"
    assert "Removing backgrounds" in shown.decode(errors="replace")


def test_a_link_to_a_missing_photo_in_a_folder_is_named_as_a_failure(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    with Image.open(eval_image("object", "alphamatting_GT04")) as im:
        im.convert("RGB").resize((160, 120)).save(folder / "kept.jpg")
    (folder / "gone.png").symlink_to(tmp_path / "moved-away.png")
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    done = run_cli(
        "remove-background", str(folder), "-o", str(out), data_dir=tmp_path, model_dir=model_dir
    )
    assert done.returncode == 1
    assert done.stdout == f"1 of 2 images written to {out}\n"
    assert f"error: {folder / 'gone.png'}: io_error: " in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["kept.png"]


def test_every_command_argument_and_option_is_explained_in_help() -> None:
    """An operator learns what `prices set SERVICE TIER CREDITS` takes from --help, not by
    trying names until one is accepted."""
    import click
    import typer

    from removeany.cli import app

    missing: list[str] = []

    def walk(command: click.Command, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        if getattr(command, "commands", None):
            return
        if not (command.help or "").strip():
            missing.append(path)
        missing.extend(
            f"{path} {param.name}"
            for param in command.params
            if param.name != "help" and not (getattr(param, "help", None) or "").strip()
        )

    walk(typer.main.get_command(app), "removeany")
    assert missing == []


def test_an_admin_grant_outlives_a_closed_output_pipe(tmp_path: Path, model_dir: Path) -> None:
    # `removeany admin credits ... | head -1` closes the pipe after the first line: the grant
    # the operator was told of must stay granted, not roll back with the second line's write.
    data = tmp_path / "data"
    created = run_cli(
        "users", "create", "pipe@example.com", "--password", "long enough pw",
        data_dir=data, model_dir=model_dir,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data), "REMOVEANY_MODEL_DIR": str(model_dir)}
    subprocess.run(
        [sys.executable, "-m", "removeany", "admin", "credits", "-r", "goodwill",
         "pipe@example.com", "7"],
        env=env, stdout=write_end, stderr=subprocess.DEVNULL, timeout=300, check=False,
    )  # fmt: skip
    os.close(write_end)
    engine = create_engine(f"sqlite:///{data / 'removeany.db'}")
    with engine.connect() as conn:
        granted = conn.execute(text("SELECT SUM(remaining) FROM credit_lots")).scalar()
    engine.dispose()
    assert granted == 7


def test_a_setting_the_environment_gets_wrong_is_said_in_a_line(
    tmp_path: Path, model_dir: Path
) -> None:
    """Each wrong REMOVEANY_* setting is named with its rule, one `error:` line each, exit 2,
    before anything is made; the value itself is never echoed (it may be a password)."""
    data = tmp_path / "data"
    wrong = {"REMOVEANY_INLINE_WORKERS": "0", "REMOVEANY_SMTP_PORT": "sekret-587"}
    for command in (["prices", "list"], ["serve"], ["worker"]):
        done = run_cli(*command, data_dir=data, model_dir=model_dir, settings=wrong)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert lines == [
            "error: REMOVEANY_SMTP_PORT: Input should be a valid integer, unable to parse "
            "string as an integer; correct it in the environment",
            "error: REMOVEANY_INLINE_WORKERS: Input should be greater than or equal to 1; "
            "correct it in the environment",
        ], (command, done.stderr)
    assert not data.exists()
