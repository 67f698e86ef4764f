"""The secret key the embedded default generates into the data dir, when processes start
together on a new data dir (each in a process of its own, as `serve` and an operator command)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from removeany.infra.settings import Settings


def _secret_keys(data_dirs: list[Path], barrier: Barrier, keys: Queue[list[str]]) -> None:
    """In a process of its own: the key of each new data dir, read at the same moment as the
    other processes read it."""
    found = []
    for data_dir in data_dirs:
        barrier.wait()
        try:
            found.append(Settings(data_dir=data_dir, secret_key=None).resolved_secret_key())
        except OSError as exc:
            found.append(repr(exc))
    keys.put(found)


def test_processes_starting_together_on_a_new_data_dir_use_one_secret_key(
    tmp_path: Path,
) -> None:
    """The embedded default keeps a generated secret key in the data dir. Processes starting
    together on a new one (`serve` and an operator command) all use the key that stays
    there: it signs sessions and keys the encrypted files. (Before, each wrote its own key
    through one temporary file: some failed with FileNotFoundError, and some went on with a
    key another process then replaced.)"""
    data_dirs = [tmp_path / f"data{n}" for n in range(20)]
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    keys: Queue[list[str]] = spawn.Queue()
    processes = [
        spawn.Process(target=_secret_keys, args=(data_dirs, barrier, keys)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    found = [keys.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    stored = [(data_dir / "secret_key").read_text() for data_dir in data_dirs]
    assert all(len(key) == 64 for key in stored)
    assert found == [stored] * 4
    assert [sorted(p.name for p in data_dir.iterdir()) for data_dir in data_dirs] == [
        ["secret_key"]
    ] * len(data_dirs)
    assert {(data_dir / "secret_key").stat().st_mode & 0o777 for data_dir in data_dirs} == {0o600}
