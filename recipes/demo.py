"""``make demo`` — the main job, end to end, on an embedded default (no network, no GPU):

1. build a small dataset in CIFAR10's raw layout (python batches);
2. convert it to MDS with zstd and sha1/xxh64 hashes into a directory that plays the remote
   (``--remote s3://bucket/cifar10-demo`` converts there instead, and training reads it back);
3. train the CIFAR10 recipe with Lightning for a few epochs (``train.py``), uninterrupted;
4. train it again, SIGKILL the run mid-epoch right after a checkpoint — a preemption — and
   rerun the same command, which resumes from the checkpoint mid-epoch;
5. print a table (samples/s, time to resume, checkpoints) and write ``loss.png``: the loss of
   the interrupted + resumed run drawn over the uninterrupted one — identical, step for step.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from recipes.cifar10.convert import convert
from recipes.cifar10.fixtures import write_raw
from recipes.common.convert import WriteOptions

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def _train_command(remote: str, cache: str, ckpt: str, epochs: int, every: int) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        str(ROOT / "yamls" / "cifar10.yaml"),
        f"data.remote={remote}",
        f"data.local={cache}",
        f"data.batch_size={BATCH}",
        "data.num_workers=1",
        "data.eval_split=null",
        f"checkpoint.dir={ckpt}",
        f"checkpoint.every_n_steps={every}",
        f"trainer.max_epochs={epochs}",
        "trainer.accelerator=cpu",
        "trainer.progress_bar=false",
        "trainer.log_every_n_steps=1",
        "model.width=8",
        "optimizer.warmup_steps=20",
        "run_name=demo",
    ]


def _checkpoint_steps(ckpt: str) -> list[int]:
    steps = []
    for path in glob.glob(os.path.join(ckpt, "step=*.ckpt")):
        try:
            steps.append(int(Path(path).stem.split("=", 1)[1]))
        except ValueError:
            continue
    return sorted(steps)


def _run(command: list[str], kill_after_step: int | None = None) -> tuple[float, int | None]:
    """Run one training command; with ``kill_after_step``, SIGKILL it as soon as a
    checkpoint at or past that step exists. Returns (seconds, step checkpointed at the kill)."""
    started = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        ckpt = next(a.split("=", 1)[1] for a in command if a.startswith("checkpoint.dir="))
        deadline = started + 600
        while proc.poll() is None:
            if kill_after_step is not None:
                reached = [s for s in _checkpoint_steps(ckpt) if s >= kill_after_step]
                # Lightning saves a step's checkpoint before it logs that step's loss: wait
                # for the log to catch up, or the table would miss a step no run trained twice.
                if reached and _last_logged_step(ckpt) >= reached[-1] - 1:
                    proc.send_signal(signal.SIGKILL)  # no cleanup, like a lost node
                    proc.wait()
                    return time.monotonic() - started, _checkpoint_steps(ckpt)[-1]
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"training did not finish within 600 s: {command}")
            time.sleep(0.05)
        output = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise RuntimeError(f"training failed ({proc.returncode}):\n{output[-4000:]}")
    return time.monotonic() - started, None


def _losses(ckpt: str) -> tuple[dict[int, float], list[float]]:
    """{step: loss} over every run logged under ``ckpt`` (a resumed run logs into a new
    version; a step trained twice — after the kill, before the resume — keeps the resumed
    value), and the time-to-first-batch of each run."""
    losses: dict[int, float] = {}
    startups: list[float] = []
    for path in sorted(glob.glob(os.path.join(ckpt, "logs", "demo", "version_*", "metrics.csv"))):
        with open(path) as file:
            for row in csv.DictReader(file):
                if row.get("train/loss"):
                    losses[int(row["step"])] = float(row["train/loss"])
                if row.get("time_to_first_batch_s"):
                    startups.append(float(row["time_to_first_batch_s"]))
    return losses, startups


def _last_logged_step(ckpt: str) -> int:
    """The last step whose loss is in the logs, read while the run may be appending to them
    (a half-written row reads as not logged yet)."""
    try:
        return max(_losses(ckpt)[0], default=-1)
    except (ValueError, KeyError):
        return -1


def _plot(path: str, whole: dict[int, float], resumed: dict[int, float], kill: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = sorted(whole)
    ax.plot(steps, [whole[s] for s in steps], lw=3, alpha=0.5, label="uninterrupted")
    steps = sorted(resumed)
    ax.plot(steps, [resumed[s] for s in steps], lw=1, color="black", label="killed + resumed")
    ax.axvline(kill, color="red", ls="--", lw=1, label=f"SIGKILL (resumed from step {kill})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_yscale("log")
    ax.set_title("CIFAR10 recipe: a mid-epoch kill does not change training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="demo-output", help="working directory (recreated)")
    parser.add_argument("--remote", default=None, help="convert to this URL instead (s3://...)")
    parser.add_argument("--images", type=int, default=3000, help="training images (5 batches)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    began = time.monotonic()
    raw = write_raw(os.path.join(out, "raw"), per_batch=args.images // 5, test=200)
    remote = args.remote or os.path.join(out, "remote")
    options = WriteOptions(
        out=remote, compression="zstd", hashes=["sha1", "xxh64"], force=True, progress=True
    )
    convert(raw, options)
    print(f"converted {args.images} images to MDS (zstd, sha1+xxh64) at {remote}")

    whole_ckpt, cut_ckpt = os.path.join(out, "ckpt-whole"), os.path.join(out, "ckpt-killed")
    steps_per_epoch = -(-args.images // BATCH)
    every = max(2, steps_per_epoch // 3)  # checkpoints every third of an epoch
    # The first checkpoint past the middle of the second epoch: a mid-epoch preemption.
    kill_at = every * -(-(steps_per_epoch + steps_per_epoch // 2) // every)
    seconds, _ = _run(
        _train_command(remote, os.path.join(out, "cache-a"), whole_ckpt, args.epochs, every)
    )
    command = _train_command(remote, os.path.join(out, "cache-b"), cut_ckpt, args.epochs, every)
    _, killed_at = _run(command, kill_after_step=kill_at)
    assert killed_at is not None, "the run finished before it could be killed"
    _run(command)  # the same command: auto-resume

    whole, whole_startups = _losses(whole_ckpt)
    resumed, startups = _losses(cut_ckpt)
    same = sorted(whole) == sorted(resumed) and all(
        abs(whole[s] - resumed[s]) <= 1e-4 * max(1.0, abs(whole[s])) for s in whole
    )
    figure = os.path.join(out, "loss.png")
    _plot(figure, whole, resumed, killed_at)
    samples = args.epochs * steps_per_epoch * BATCH
    rows = [
        ("training throughput", f"{samples / seconds:,.0f} samples/s (incl. startup)"),
        ("time to first batch, fresh", f"{whole_startups[0]:.2f} s (after imports)"),
        ("time to first batch, resumed", f"{startups[-1]:.2f} s (restored at step {killed_at})"),
        (
            "checkpoints kept",
            ", ".join(n for n in sorted(os.listdir(cut_ckpt)) if n.endswith(".ckpt")),
        ),
        ("steps trained", f"{len(whole)} uninterrupted / {len(resumed)} killed + resumed"),
        ("losses identical", "yes, every step" if same else "NO"),
        ("loss curve", figure),
        ("demo wall time", f"{time.monotonic() - began:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
