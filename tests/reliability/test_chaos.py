"""Issue #11, guarantee 1: crash anywhere, restart clean.

A Lightning run (2 DDP ranks on CPU, 2 DataLoader workers each, an S3 remote served by moto
behind a slow link, a cache limit of a few shards so eviction never stops, a checkpoint every
few steps) is SIGKILLed as a whole process group at random moments and restarted with the same
command each time, then allowed to finish. Kills come from a seeded RNG (``KINDS``): some at a
random time during startup, about half at a random time after training began (downloads,
evictions and steps are all in flight then), and some the moment a shard download, an
eviction or a checkpoint write is seen under way. What each kill hit is read off the temp files
the killed processes left and the locks they held (``/proc/locks``) at that moment.

What must hold:

- every restart runs without cleanup and resumes exactly at its checkpoint;
- each attempt trains on the uninterrupted run's batch for every step it logs, and the steps
  of the latest attempt to log each step make up the uninterrupted run, in order;
- after every kill, no file under a final name in the cache is partial (size and sha1 match
  the index) and ``last.ckpt`` (when present) loads;
- at the end nothing stale is left: no ``/dev/shm`` entry the run's processes had open
  survives them; no temporary file in the cache, checkpoint or temp dirs; the same, unheld set
  of lock files an uninterrupted run leaves.

Lock files are persistent on purpose: a flock file must not be unlinked while another process
may be waiting on it (that breaks mutual exclusion), so the cache keeps one per shard file plus
a few fixed ones, bounded by the dataset. What a crash must not do is add to that set or leave
one held. ``/dev/shm`` entries are attributed by ownership (the run's processes map or hold
them) rather than by counting the whole directory, which other processes on the machine use
too; the raw counts before and after are reported as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import psutil
import pytest
import torch

from streaming_lightning import MDSWriter
from streaming_lightning.fsutil import parse_temp_name
from streaming_lightning.storage.registry import reset_backends
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.s3_server import CREDENTIALS
from tests.fixtures.servers import ServerProcess

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/locks, /proc/<pid>/maps, /dev/shm"
)

ROOT = Path(__file__).parents[2]
SAMPLES = 960  # 64 shards of 15 samples
PAD = 1000  # random bytes per sample: zstd cannot shrink them, the slow link carries them all
SHARD_BYTES = 16 * 1024
BATCH = 4  # per device; 2 ranks: a global batch of 8
EPOCHS = 2
STEPS = SAMPLES // (2 * BATCH) * EPOCHS
EVERY_N_STEPS = 4
CACHE_LIMIT = 8 * SHARD_BYTES  # 2 shards per DataLoader worker of the node
SHUFFLE_BLOCK = 64  # samples; the shuffle stays local enough that workers do not thrash
LINK_BYTES_PER_S = 128 * 1024  # per connection: a shard takes ~0.12 s to arrive
CKPT_FLOATS = 2 * 1024 * 1024  # 8 MB checkpoints: a write lasts long enough to be caught
ATTEMPT_TIMEOUT_S = 240.0
POLL_S = 0.2  # how often an attempt's processes and their /dev/shm entries are listed


# ---------------------------------------------------------------------------- environment


@dataclass
class Remote:
    url: str
    moto_port: int
    env: dict[str, str]
    index: dict[str, Any]


@pytest.fixture(scope="module")
def remote(moto_process: ServerProcess) -> Iterator[Remote]:
    """The chaos dataset on the S3 server (zstd, sha1, incompressible payloads)."""
    import boto3

    env = {**CREDENTIALS, "S3_ENDPOINT_URL": moto_process.url}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        reset_backends()
        client = boto3.client("s3", endpoint_url=moto_process.url, region_name="us-east-1")
        client.create_bucket(Bucket="chaos-data")
        url = "s3://chaos-data/ds"
        rng = np.random.default_rng(11)
        with MDSWriter(
            out=url,
            columns={"id": "int", "pad": "bytes"},
            compression="zstd",
            hashes=["sha1"],
            size_limit=SHARD_BYTES,
        ) as writer:
            for i in range(SAMPLES):
                writer.write({"id": i, "pad": rng.bytes(PAD)})
        body = client.get_object(Bucket="chaos-data", Key="ds/index.json")["Body"]
        index = json.loads(body.read())
        reset_backends()
    yield Remote(url, moto_process.port, env, index)


@dataclass
class Layout:
    """One run's directories: cache, checkpoints, step logs, its own TMPDIR."""

    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def ckpt(self) -> Path:
        return self.root / "ckpt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def make(self, remote: Remote, **extra: Any) -> None:
        self.tmp.mkdir(parents=True)
        config = {
            "remote": remote.url,
            "local": str(self.cache),
            "ckpt_dir": str(self.ckpt),
            "log_dir": str(self.logs),
            "batch": BATCH,
            "workers": 2,
            "cache_limit": CACHE_LIMIT,
            "shuffle_block_size": SHUFFLE_BLOCK,
            "max_epochs": EPOCHS,
            "every_n_steps": EVERY_N_STEPS,
            "ckpt_floats": CKPT_FLOATS,
            **extra,
        }
        self.config.write_text(json.dumps(config))

    def env(self, remote: Remote, endpoint: str) -> dict[str, str]:
        env = {**os.environ, **remote.env, "S3_ENDPOINT_URL": endpoint}
        env.update(PYTHONPATH=str(ROOT), TMPDIR=str(self.tmp), PYTHONUNBUFFERED="1")
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            env.pop(key, None)
        return env

    def output(self) -> str:
        return (self.root / "stdout.log").read_text(errors="replace")[-6000:]


# ---------------------------------------------------------------------------- observing


def group_pids(pgid: int) -> set[int]:
    """Live (non-zombie) processes of a process group."""
    pids = set()
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return pids


def kill_group(pgid: int, deadline_s: float = 30.0) -> None:
    """SIGKILL every process of the group and wait until none is left."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if not group_pids(pgid):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of group {pgid} survived SIGKILL: {group_pids(pgid)}")
        time.sleep(0.01)


def flock_holders() -> dict[int, set[int]]:
    """inode -> pids holding a lock on it, from /proc/locks."""
    held: dict[int, set[int]] = {}
    with open("/proc/locks") as file:
        for line in file:
            parts = line.split()
            if "->" in parts:  # a waiter, not a holder
                continue
            try:
                pid, inode = int(parts[4]), int(parts[5].split(":")[2])
            except (IndexError, ValueError):
                continue
            held.setdefault(inode, set()).add(pid)
    return held


def temp_files(directory: Path) -> list[Path]:
    """Temp files the library writes (``.<target>.tmp.<pid>.<hex>``), recursively."""
    if not directory.exists():
        return []
    return [p for p in directory.rglob(".*") if p.is_file() and parse_temp_name(p.name)]


def written_by(paths: list[Path], pids: set[int]) -> list[Path]:
    return [p for p in paths if (parsed := parse_temp_name(p.name)) and parsed[1] in pids]


def shm_inodes(pids: set[int] | None = None) -> set[int]:
    """Inodes of /dev/shm files these processes (all, if None) map or hold open. By inode,
    not name: glibc maps a named semaphore under the temp name it created it with before
    linking it to its real name."""
    inodes: set[int] = set()
    for pid in psutil.pids() if pids is None else pids:
        try:
            with open(f"/proc/{pid}/maps") as file:
                inodes.update(int(line.split()[4]) for line in file if " /dev/shm/" in line)
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/dev/shm/"):
                    inodes.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
        except OSError:
            continue
    return inodes


def shm_left(inodes: set[int]) -> list[str]:
    """/dev/shm entries with one of these inodes that no live process maps or holds open."""
    candidates = [e for e in os.scandir("/dev/shm") if e.inode() in inodes]
    if not candidates:
        return []
    alive = shm_inodes()
    return sorted(e.name for e in candidates if e.inode() not in alive)


def logged_steps(layout: Layout, pid: int) -> list[dict[str, Any]]:
    path = layout.logs / f"attempt-{pid}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def checkpoint_step(layout: Layout) -> int | None:
    """The global step ``last.ckpt`` resumes at; it must always load (never partial)."""
    path = layout.ckpt / "last.ckpt"
    if not path.exists():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])


def check_cache_files(layout: Layout, index: dict[str, Any]) -> int:
    """Every file under a final name in the cache is complete: the size and sha1 the index
    records. Returns how many files were checked."""
    checked = 0
    for shard in index["shards"]:
        for key in ("raw_data", "zip_data"):
            info = shard.get(key)
            if not info:
                continue
            path = layout.cache / info["basename"]
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            assert len(data) == info["bytes"], f"partial {path}: {len(data)} of {info['bytes']}"
            assert hashlib.sha1(data).hexdigest() == info["hashes"]["sha1"], f"corrupt {path}"
            checked += 1
    index_path = layout.cache / "index.json"
    if index_path.exists():
        assert json.loads(index_path.read_text()) == index, "partial or foreign index.json"
    return checked


def lock_files(layout: Layout) -> set[str]:
    found = [*layout.root.rglob("*.lock"), *layout.root.rglob("*.lease")]
    return {str(p.relative_to(layout.root)) for p in found}


# ---------------------------------------------------------------------------- attempts


@dataclass
class Attempt:
    index: int
    kind: str  # one of KINDS, or "final" (runs to its end)
    pid: int = 0
    resumed_at: int | None = None  # last.ckpt's step when it started
    trigger: str = ""
    phases: list[str] = field(default_factory=list)
    seconds: float = 0.0
    first_step_s: float | None = None
    code: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # every process seen in its group
    shm: set[int] = field(default_factory=set)  # inodes of /dev/shm files its processes had open


def process_states(pids: set[int]) -> str:
    """One line per process: pid, state, the kernel function it sleeps in and its command —
    what a hung attempt was waiting on."""
    lines = []
    for pid in sorted(pids):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text().strip() or "-"
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited while we looked
        lines.append(f"  {pid} {state} {wchan} {command[:160]}")
    return "\n".join(lines) or "  (none)"


class Running:
    """One attempt of the command, watched: its processes and the /dev/shm files they open are
    listed every ``POLL_S`` by a thread (so the loop that times the kill stays responsive)."""

    def __init__(self, layout: Layout, env: dict[str, str], attempt: Attempt) -> None:
        self.layout, self.attempt = layout, attempt
        self.started = time.monotonic()
        self._out: IO[bytes] = open(layout.root / "stdout.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.chaos_run", str(layout.config)],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: ranks, workers, resource tracker
        )
        attempt.pid = self.proc.pid
        self._log = layout.logs / f"attempt-{self.proc.pid}.jsonl"
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            pids = group_pids(self.proc.pid)
            self.attempt.pids |= pids
            self.attempt.shm |= shm_inodes(pids)
            self._stop.wait(POLL_S)

    def poll(self) -> bool:
        """True while the command runs; notes the time of its first step."""
        now = time.monotonic()
        if self.attempt.first_step_s is None and self._log.exists() and self._log.stat().st_size:
            self.attempt.first_step_s = now - self.started
        if now - self.started > ATTEMPT_TIMEOUT_S:
            attempt = self.attempt
            raise AssertionError(
                f"attempt {attempt.index} ({attempt.kind}, resumed at step {attempt.resumed_at}, "
                f"first step after {attempt.first_step_s} s) hung; its processes now:\n"
                f"{process_states(group_pids(self.proc.pid))}\n{self.layout.output()}"
            )
        return self.proc.poll() is None

    def finish(self) -> None:
        self._stop.set()
        self._watcher.join()
        kill_group(self.proc.pid)
        self._out.close()
        self.attempt.code = self.proc.wait()
        self.attempt.seconds = time.monotonic() - self.started
        self.attempt.steps = logged_steps(self.layout, self.proc.pid)


def run_to_end(layout: Layout, env: dict[str, str], attempt: Attempt) -> None:
    running = Running(layout, env, attempt)
    try:
        while running.poll():
            time.sleep(0.02)
    finally:
        running.finish()
    assert attempt.code == 0, f"attempt {attempt.index} failed ({attempt.code}):\n{layout.output()}"


def in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except ProcessLookupError:
        return False


def last_step(path: Path) -> int | None:
    """The step of the last complete line of a step log (reads only its tail)."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
            lines = [line for line in file.read().splitlines() if line.endswith(b"}")]
    except FileNotFoundError:
        return None
    return int(json.loads(lines[-1])["step"]) if lines else None


#: Kinds of kill and the moment each waits for. All but "startup" are armed once the attempt's
#: first checkpoint is on disk, so every such attempt moves the run forward and the kills
#: spread over the whole run (both epochs) instead of piling up at its start.
KINDS = {
    "startup": "a random time before the first step (imports, DDP setup, index download)",
    "timed": "a random time 0.2-3.5 s after the attempt's first checkpoint",
    "checkpoint": "the moment rank 0's next checkpoint temp file appears",
    "download": "the moment a shard's download temp file appears",
    "eviction": "the moment a process holds the cache's eviction lock",
}


def run_and_kill(
    layout: Layout,
    env: dict[str, str],
    attempt: Attempt,
    rng: random.Random,
    startup_s: float,
    step_cap: int,
    armed_at: int,
) -> None:
    """Start the command and SIGKILL its process group at the moment ``attempt.kind`` waits
    for (see ``KINDS``; armed once it logged step ``armed_at``), or once it logged step
    ``step_cap`` (so the run cannot finish before its last kill). Then record what the kill hit: a download's or a checkpoint's temp file
    left by one of its processes, the eviction lock held by one of them, training under way or
    still starting."""
    running = Running(layout, env, attempt)
    pgid = running.proc.pid  # also rank 0, the process that writes checkpoints
    log = layout.logs / f"attempt-{pgid}.jsonl"
    evict_lock = layout.cache / ".locks" / "evict.lock"
    kill_at = None
    if attempt.kind == "startup":
        kill_at = running.started + rng.uniform(0.2, 0.9) * startup_s
    log_size, step = 0, None
    armed = False
    holders: set[int] = set()

    def evicting() -> set[int]:
        try:
            inode = evict_lock.stat().st_ino
        except FileNotFoundError:
            return set()
        return {pid for pid in flock_holders().get(inode, set()) if in_group(pid, pgid)}

    tmp_before = set(os.listdir(layout.tmp))

    def checkpoint_temps() -> list[str]:
        """Rank 0's temp file beside the checkpoint (AtomicCheckpointIO), or the one Lightning's
        own IO makes in TMPDIR."""
        ours = [p.name for p in written_by(temp_files(layout.ckpt), {pgid})]
        made = [n for n in os.listdir(layout.tmp) if n not in tmp_before and n.startswith("tmp")]
        return ours + [n for n in made if (layout.tmp / n).is_file()]

    def downloading() -> bool:
        try:
            names = os.listdir(layout.cache)
        except FileNotFoundError:
            return False
        return any((p := parse_temp_name(name)) and in_group(p[1], pgid) for name in names)

    try:
        while True:
            if not running.poll():
                raise AssertionError(
                    f"attempt {attempt.index} ({attempt.kind}) exited with "
                    f"{running.proc.returncode} before it was killed:\n{layout.output()}"
                )
            logged = attempt.first_step_s is not None
            if logged and log.stat().st_size != log_size:
                log_size = log.stat().st_size
                step = last_step(log)
            if not armed and step is not None and step >= armed_at:
                armed = True
                if attempt.kind == "timed":
                    kill_at = time.monotonic() + rng.uniform(0.2, 3.5)
            trigger = ""
            if kill_at is not None and time.monotonic() >= kill_at:
                trigger = "time"
            elif armed and attempt.kind == "checkpoint":
                trigger = "checkpoint temp seen" if checkpoint_temps() else ""
            elif armed and attempt.kind == "download":
                trigger = "download temp seen" if downloading() else ""
            elif armed and attempt.kind == "eviction":
                holders = evicting()
                trigger = "eviction lock held" if holders else ""
            if not trigger and step is not None and step >= step_cap:
                trigger = "step cap"
            if trigger:
                # Locks vanish with the processes, temp files stay: read the locks first,
                # unless the moment is a write that may end any millisecond.
                if trigger in ("time", "step cap"):
                    holders = evicting()
                os.killpg(pgid, signal.SIGKILL)
                attempt.trigger = trigger
                break
            time.sleep(0.001 if armed and attempt.kind != "timed" else 0.01)
    finally:
        running.finish()
    ours = attempt.pids | {pgid}
    attempt.phases = ["training" if attempt.first_step_s is not None else "startup"]
    if written_by(temp_files(layout.cache), ours):
        attempt.phases.append("download")
    if holders:
        attempt.phases.append("eviction")
    if written_by(temp_files(layout.ckpt), ours) or checkpoint_temps():
        attempt.phases.append("checkpoint")


def schedule(kills: int, rng: random.Random) -> list[str]:
    """Kinds of the killed attempts: ~10% during startup, ~15% each the moment a download, an
    eviction or a checkpoint write is under way, the rest at a random time of training."""
    startup = max(1, round(kills * 0.1)) if kills > 3 else 0
    targeted = max(1, round(kills * 0.15))
    kinds = ["startup"] * startup + ["checkpoint", "download", "eviction"] * targeted
    kinds += ["timed"] * (kills - len(kinds))
    rng.shuffle(kinds)
    assert set(kinds) <= set(KINDS)
    return kinds


@dataclass
class Reference:
    batches: list[list[int]]
    locks: set[str]
    tmp: set[str]
    startup_s: float
    seconds: float


@pytest.fixture(scope="module")
def reference(remote: Remote, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """An uninterrupted run of the same command, straight to the S3 server (no slow link: the
    batches must not depend on how fast data arrives)."""
    layout = Layout(tmp_path_factory.mktemp("reference"))
    layout.make(remote)
    attempt = Attempt(0, "final")
    run_to_end(layout, layout.env(remote, remote.env["S3_ENDPOINT_URL"]), attempt)
    assert [s["step"] for s in attempt.steps] == list(range(STEPS))
    assert attempt.first_step_s is not None
    # The lock files of a cache are bounded by its dataset: a download lock per stored shard
    # file, a lease per shard, the index's download lock, the eviction and decompress locks,
    # and the lock under which the node's first process builds the shard table.
    expected = {"cache/.locks/index.json.lock", "cache/.locks/evict.lock"}
    expected.add("cache/.shard-table/.build.lock")
    expected.add("cache/.locks/decompress.lock")
    for shard in remote.index["shards"]:
        expected.add(f"cache/.locks/{shard['zip_data']['basename']}.lock")
        expected.add(f"cache/.locks/{shard['raw_data']['basename']}.lease")
    assert lock_files(layout) == expected
    return Reference(
        batches=[s["ids"] for s in attempt.steps],
        locks=lock_files(layout),
        tmp=set(os.listdir(layout.tmp)),
        startup_s=attempt.first_step_s,
        seconds=attempt.seconds,
    )


def chaos(
    remote: Remote, reference: Reference, root: Path, kills: int, seed: int, steps: int = STEPS
) -> dict[str, Any]:
    """Run the command ``kills`` times killed and once to its end (``steps`` steps); check
    everything the module docstring lists; return the figures."""
    began = time.monotonic()
    layout = Layout(root)
    layout.make(remote, max_steps=steps)
    shm_before = set(os.listdir("/dev/shm"))
    locks_before = lock_files(layout)
    proxy = FaultProxy(remote.moto_port, bytes_per_s=LINK_BYTES_PER_S)
    env = layout.env(remote, proxy.url)
    rng = random.Random(seed)
    attempts = [Attempt(i, kind) for i, kind in enumerate([*schedule(kills, rng), "final"])]
    stale_shm: set[str] = set()
    checked_files = 0
    try:
        for attempt in attempts:
            attempt.resumed_at = checkpoint_step(layout)
            if attempt.kind == "final":
                run_to_end(layout, env, attempt)
            else:
                start = attempt.resumed_at or 0
                share = math.ceil((steps - start) / (kills - attempt.index + 1))
                cap = start + max(2 * EVERY_N_STEPS + 1, share)  # room for 2 checkpoints
                armed_at = start + EVERY_N_STEPS  # logged only once that checkpoint is written
                run_and_kill(layout, env, attempt, rng, reference.startup_s, cap, armed_at)
                # Right after the kill: nothing partial under a final name; last.ckpt loads.
                checked_files += check_cache_files(layout, remote.index)
                checkpoint_step(layout)
            stale_shm.update(shm_left(attempt.shm))
    finally:
        proxy.close()

    shm_after = set(os.listdir("/dev/shm"))
    locks = lock_files(layout)
    killed = [a for a in attempts if a.kind != "final"]
    report = {
        "kills": len(killed),
        "kinds": dict(Counter(a.kind for a in killed)),
        "triggers": dict(Counter(a.trigger for a in killed)),
        "phases_hit": dict(Counter(p for a in killed for p in a.phases)),
        "per_kill": [f"{a.kind}: {a.trigger} -> {'+'.join(a.phases)}" for a in killed],
        "attempt_seconds": [round(a.seconds, 1) for a in attempts],
        "first_step_seconds": [
            None if a.first_step_s is None else round(a.first_step_s, 1) for a in attempts
        ],
        "resumed_at_step": [a.resumed_at for a in attempts],
        "killed_after_step": [a.steps[-1]["step"] if a.steps else None for a in killed],
        "steps_logged": [len(a.steps) for a in attempts],
        "cache_files_checked_after_kills": checked_files,
        "link_requests": dict(proxy.counts),
        "shm_entries_before": len(shm_before),
        "shm_entries_after": len(shm_after),
        "shm_files_opened_by_the_run": len(set().union(*(a.shm for a in attempts))),
        "shm_left_by_the_run": sorted(stale_shm),
        "temp_files_left": [str(p.relative_to(layout.root)) for p in temp_files(layout.root)],
        "tmpdir_extra": sorted(set(os.listdir(layout.tmp)) - reference.tmp),
        "ckpt_dir": sorted(os.listdir(layout.ckpt)),
        "shard_table_dir": sorted(os.listdir(layout.cache / ".shard-table")),
        "lock_files_before": len(locks_before),
        "lock_files_after": len(locks),
        "lock_files_uninterrupted_run": len(reference.locks),
        "reference_seconds": round(reference.seconds, 1),
        "reference_first_step_seconds": round(reference.startup_s, 1),
        "chaos_seconds": round(time.monotonic() - began, 1),
    }
    (root / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))

    # Every restart resumed exactly at its checkpoint and trained on the reference's batches.
    assert all(a.code == -signal.SIGKILL for a in killed), [a.code for a in killed]
    for attempt in attempts:
        logged = [s["step"] for s in attempt.steps]
        if logged:
            assert logged[0] == (attempt.resumed_at or 0), (attempt.index, attempt.resumed_at)
            assert logged == list(range(logged[0], logged[0] + len(logged))), attempt.index
        for record in attempt.steps:
            assert record["ids"] == reference.batches[record["step"]], (
                f"attempt {attempt.index} trained step {record['step']} on other samples"
            )
    trajectory = {r["step"]: r["ids"] for a in attempts for r in a.steps}  # latest attempt wins
    assert sorted(trajectory) == list(range(steps))
    assert [trajectory[s] for s in range(steps)] == reference.batches[:steps]

    # Nothing stale.
    assert not stale_shm, f"/dev/shm entries the killed runs left: {sorted(stale_shm)}"
    assert not report["temp_files_left"], report["temp_files_left"]
    assert report["tmpdir_extra"] == [], "temp dir entries left by killed runs"
    assert report["ckpt_dir"] == ["last.ckpt"]
    tables = [name for name in report["shard_table_dir"] if name.endswith(".table")]
    assert len(tables) == 1 and len(report["shard_table_dir"]) == 2, report["shard_table_dir"]
    assert locks <= reference.locks, f"lock files an uninterrupted run never makes: {locks}"
    if steps == STEPS:
        assert locks == reference.locks, sorted(reference.locks - locks)
    held = flock_holders()
    found = [*layout.root.rglob("*.lock"), *layout.root.rglob("*.lease")]
    assert not [p for p in found if p.stat().st_ino in held], "a lock is still held"
    return report


def test_three_kills_restart_clean(remote: Remote, reference: Reference, tmp_path: Path) -> None:
    """The short version: 3 kills (during a download, an eviction, a checkpoint write) over
    the first 60 steps."""
    report = chaos(remote, reference, tmp_path / "chaos", kills=3, seed=3, steps=60)
    assert report["kills"] == 3


@pytest.mark.slow
def test_twenty_kills_restart_clean(remote: Remote, reference: Reference, tmp_path: Path) -> None:
    report = chaos(remote, reference, tmp_path / "chaos", kills=20, seed=20)
    assert report["kills"] == 20
    wanted = {"startup", "training", "download", "eviction", "checkpoint"}
    assert wanted <= set(report["phases_hit"]), report["phases_hit"]
