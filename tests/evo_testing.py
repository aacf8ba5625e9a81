"""Shared test helpers: worker processes on one storage, sampler checks, a stand-in corpus."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from datetime import timedelta
import os
from pathlib import Path
import random
import re
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest
import sqlalchemy

import optuna_evo
from optuna_evo.operators import BaseCrossover
from optuna_evo.operators import BaseMutation

STORAGE_KINDS = ("sqlite", "journal", "postgres")
POSTGRES_ENV = "OPTUNA_EVO_TEST_POSTGRES"

TINY_SHAKESPEARE_VOCAB = "\n !$&',-.3:;?" + string.ascii_uppercase + string.ascii_lowercase
"""The 65 characters of tiny shakespeare's ``input.txt``."""

# Between them, the speakers' names hold every capital letter and the words every lower-case
# letter and the rare symbols ('$', '&', '3', '-', "'").
_SPEAKERS = (
    "FIRST CITIZEN",
    "MENENIUS",
    "VOLUMNIA",
    "KING RICHARD",
    "QUEEN ELIZABETH",
    "JULIET",
    "ROMEO",
    "BALTHAZAR",
    "POLIXENES",
    "GLOUCESTER",
    "DUKE OF YORK",
    "WARWICK",
)
_WORDS = (
    "the and to of my you that in is not with me it for be his your this but he have as thou "
    "so him will what thy all her do no by shall if are we thee our lord on good now sir come "
    "king love o well let more here which enter o'er 'tis speak quoth jest zeal vex know fight "
    "gentle heaven night death blood crown grace sweet fair honour brother father mother "
    "well-a-day &c 3 $"
).split()


def synthetic_text(folder: Path, n_chars: int = 20_000, seed: int = 0) -> Path:
    """Write a play-like ``input.txt`` into ``folder``; return its path.

    A stand-in for tiny shakespeare, which a fresh clone lacks: speeches of random words from
    a fixed list, over exactly the corpus's 65 characters, so a small model's loss falls within
    a few dozen steps. About ``n_chars`` characters (the real text has 1.1 million).
    """
    rng = random.Random(seed)
    speeches: list[str] = []
    size = 0
    while size < n_chars:
        lines = []
        for _ in range(rng.randint(1, 3)):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 9))]
            words[0] = words[0].capitalize()
            line = " ".join(w + ("," if rng.random() < 0.1 else "") for w in words)
            lines.append(line.rstrip(",") + rng.choice(".....!?;:"))
        speeches.append(f"{rng.choice(_SPEAKERS)}:\n" + "\n".join(lines) + "\n\n")
        size += len(speeches[-1])
    text = "".join(speeches)
    assert sorted(set(text)) == sorted(TINY_SHAKESPEARE_VOCAB)  # a vocabulary of 65
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "input.txt"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def grpc_proxy(tmp_path: Path) -> Iterator[tuple[str, optuna.storages.BaseStorage]]:
    """Serve a SQLite study database through Optuna's gRPC storage proxy in a subprocess.

    Yields (python expression building a ``GrpcStorageProxy`` client in a worker, the
    database's storage here); the server is stopped on exit.
    """
    pytest.importorskip("grpc", reason="grpcio is not installed (pip install -e .[dev])")
    url = f"sqlite:///{tmp_path / 'grpc.db'}"
    storage = optuna.storages.RDBStorage(url)  # creates the schema before the server starts
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import optuna; optuna.storages.run_grpc_proxy_server("
            f"optuna.storages.RDBStorage({url!r}), host='127.0.0.1', port={port})",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = f"optuna.storages.GrpcStorageProxy(host='127.0.0.1', port={port})"
        proxy = eval(client, {"optuna": optuna})
        try:
            proxy.wait_server_ready(timeout=60)
        except ConnectionError:
            server.kill()
            raise AssertionError(server.communicate()[1].decode()[-3000:]) from None
        finally:
            proxy.close()
        yield client, storage
    finally:
        server.kill()
        server.communicate()


def storage_for(kind: str, tmp_path: Path) -> tuple[str, optuna.storages.BaseStorage]:
    """Return (python expression building the storage in a worker, the storage here).

    ``postgres`` uses the server named by ``$OPTUNA_EVO_TEST_POSTGRES`` (``.ci/run`` starts
    one) and skips the test with that reason when it is unset.
    """
    if kind == "postgres":
        url = os.environ.get(POSTGRES_ENV)
        if not url:
            pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
        expr = f"optuna.storages.RDBStorage({url!r})"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'study.db'}"
        expr = (
            f"optuna.storages.RDBStorage({url!r}, "
            "engine_kwargs={'connect_args': {'timeout': 60}})"
        )
    elif kind == "journal":
        path = str(tmp_path / "journal.log")
        expr = (
            f"optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend({path!r}))"
        )
    else:
        raise ValueError(kind)
    return expr, eval(expr, {"optuna": optuna})


def backdate_heartbeat(
    storage: optuna.storages.RDBStorage, trial_id: int, by: timedelta = timedelta(hours=1)
) -> None:
    """Move a trial's last stored heartbeat ``by`` into the past, as if its worker died then.

    Stands in for sleeping past the grace period: Optuna fails a RUNNING trial whose last
    heartbeat is more than ``grace_period`` behind the database's clock. The time goes through
    SQLAlchemy's ``DateTime`` type (no dialect's date arithmetic), so this works for SQLite and
    PostgreSQL alike. ``JournalStorage`` keeps no heartbeats (in Optuna 5 it is no
    ``BaseHeartbeat``), so there is nothing to back-date there. Fails unless the trial has
    exactly one heartbeat and it moved.
    """
    beats = sqlalchemy.table(
        "trial_heartbeats",
        sqlalchemy.column("trial_id", sqlalchemy.Integer),
        sqlalchemy.column("heartbeat", sqlalchemy.DateTime),
    )
    mine = beats.c.trial_id == trial_id
    with storage.engine.begin() as db:
        last = db.execute(sqlalchemy.select(beats.c.heartbeat).where(mine)).scalars().all()
        assert len(last) == 1, f"trial {trial_id} has {len(last)} heartbeats, not one"
        moved = db.execute(sqlalchemy.update(beats).where(mine).values(heartbeat=last[0] - by))
        assert moved.rowcount == 1, f"trial {trial_id}: {moved.rowcount} heartbeats moved"


def run_workers(
    storage_expr: str,
    study_name: str,
    sampler_expr: str,
    objective_src: str,
    n_workers: int,
    n_trials: int,
    timeout: float = 240.0,
    pruner_expr: str = "optuna.pruners.NopPruner()",
) -> None:
    """Start ``n_workers`` processes that each run ``n_trials`` trials; fail on any error.

    ``objective_src`` defines ``objective(trial)``; ``sampler_expr`` builds the sampler. The
    workers wait for each other before their first trial, so on a slow or busy machine they
    still run side by side (importing torch can take seconds and finish at different times).
    """
    gate = tempfile.mkdtemp(prefix="optuna-evo-gate-")
    code = textwrap.dedent(
        """
        import os
        import pathlib
        import time
        import warnings
        import optuna
        import optuna_evo
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        {objective}
        study = optuna.load_study(
            study_name={name!r}, storage={storage}, sampler={sampler}, pruner={pruner}
        )
        gate = pathlib.Path({gate!r})
        (gate / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(gate.iterdir())) < {n_workers} and time.monotonic() < deadline:
            time.sleep(0.01)
        study.optimize(objective, n_trials={n_trials}, catch=())
        """
    ).format(
        objective=textwrap.dedent(objective_src),
        name=study_name,
        storage=storage_expr,
        sampler=sampler_expr,
        pruner=pruner_expr,
        n_trials=n_trials,
        gate=gate,
        n_workers=n_workers,
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(n_workers)
    ]
    errors = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            if p.returncode != 0:
                errors.append(err.decode()[-3000:])
    finally:
        shutil.rmtree(gate, ignore_errors=True)
    assert not errors, "\n\n".join(errors)


def assert_consistent_lineage(
    study: optuna.Study, min_generations: int = 2, min_bred_fraction: float = 0.75
) -> None:
    """Every lineage refers to finished parents of an earlier generation, no generation copies
    one elite twice, and evolution really happened.

    At least ``min_generations`` generations exist, and in every generation after the first
    at least ``min_bred_fraction`` of the trials (enqueued ones aside) were bred: an elite,
    child or mutant with parents. Generation labels and well-formed parents alone would pass
    a sampler that never breeds (random search in numbered generations).
    """
    trials = {t._trial_id: t for t in study.get_trials(deepcopy=False)}
    elites: set[tuple[int, tuple[int, ...]]] = set()
    # generation -> [bred trials, trials] (enqueued ones aside)
    counts: dict[int, list[int]] = {}
    for t in trials.values():
        info = optuna_evo.lineage(t, study)
        assert info is not None, f"trial {t.number} has no lineage"
        assert t.user_attrs["optuna_evo:generation"] == info.generation
        for pid, number in zip(info.parent_ids, info.parent_numbers):
            parent: FrozenTrial = trials[pid]
            assert parent.number == number
            assert parent.state in (TrialState.COMPLETE, TrialState.PRUNED)
            parent_info = optuna_evo.lineage(parent, study)
            assert parent_info is not None and parent_info.generation < info.generation
        if info.role == "elite" and t.state != TrialState.FAIL:
            copy = (info.generation, info.parent_ids)
            assert copy not in elites, f"trial {t.number} copies an elite already copied"
            elites.add(copy)
        if info.role in ("child", "mutant", "elite"):
            assert info.parent_ids
        else:
            assert not info.parent_ids
        count = counts.setdefault(info.generation, [0, 0])
        if info.role != "enqueued":
            count[0] += info.role != "random"
            count[1] += 1
    assert len(counts) >= min_generations, sorted(counts)
    # Every caller's run (faults, pruning, threads, 2-4 worker processes) bred every trial of
    # every later generation at writing: the default leaves room for a lost race or two.
    fractions = {g: bred / total for g, (bred, total) in sorted(counts.items()) if g and total}
    assert fractions and min(fractions.values()) >= min_bred_fraction, (
        f"bred fraction per generation: {fractions}"
    )


def assert_names_rule(error: BaseException) -> None:
    """An argument error states the rule that was broken (``must ...``, ``needs ...``,
    ``is required`` or the allowed choices), besides the argument ``match=`` looks for."""
    message = str(error)
    assert re.search(r" must | needs |is required|allowed: ", message), message


class TowardsLow(BaseMutation):
    """Mutates every value to its distribution's low end, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, distribution: BaseDistribution, value: Any, rng: Any) -> Any:
        self.calls += 1
        assert isinstance(distribution, FloatDistribution)
        return distribution.low


class Larger(BaseCrossover):
    """Takes the larger of the parents' values, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, distribution: BaseDistribution, values: Sequence[Any], rng: Any) -> Any:
        self.calls += 1
        return max(values)


def assert_blend_reach(excess: list[float], blend_alpha: float, at_least: int) -> None:
    """Check how far blend-crossover children left their parents' interval.

    ``excess`` holds, per child value, its distance outside the parents' interval in units
    of the interval's width: never positive with ``blend_alpha=0``; BLX-2 reaches beyond one
    width, which the default alpha 0.5 never does.
    """
    assert len(excess) >= at_least
    if blend_alpha == 0.0:
        assert max(excess) <= 1e-9
    else:
        assert max(excess) > 1.0


def unmirrored_lineage(
    study: optuna.Study, trial: FrozenTrial, population_size: int
) -> tuple[optuna_evo.Lineage, list[FrozenTrial]]:
    """Check a ``mirror_user_attrs=False`` trial: no user attrs, lineage readable anyway.

    Returns the trial's lineage and parents for sampler-specific checks.
    """
    assert not [k for k in trial.user_attrs if k.startswith("optuna_evo:")], trial.number
    info = optuna_evo.lineage(trial, study)
    assert info is not None and info.generation == trial.number // population_size
    parents = optuna_evo.parents(trial, study)
    assert [p.number for p in parents] == list(info.parent_numbers)
    return info, parents
