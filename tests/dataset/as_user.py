"""Run ``tests.dataset.elastic_run`` as another Unix user: ``python -m tests.dataset.as_user
USER CONFIG_JSON`` (as root).

The interpreter of this machine lives under /root, which other users cannot read, so the child
starts as root, imports everything the run will need, then drops to USER (groups, gid, uid)
and sets USER/LOGNAME/HOME as a login would before any dataset code runs. From there on the
process can only touch what USER may: exactly the situation of a second user on the machine.
"""

from __future__ import annotations

import multiprocessing.connection
import multiprocessing.heap
import multiprocessing.popen_fork
import multiprocessing.queues
import multiprocessing.reduction
import multiprocessing.resource_sharer
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import os
import pwd
import sys

import torch.utils.data._utils.pin_memory
import torch.utils.data._utils.signal_handling
import torch.utils.data._utils.worker

import streaming_lightning.dataset.streaming_dataset
import streaming_lightning.storage.local
from tests.dataset import elastic_run

PRELOADED = (
    multiprocessing.connection,
    multiprocessing.heap,
    multiprocessing.popen_fork,
    multiprocessing.queues,
    multiprocessing.reduction,
    multiprocessing.resource_sharer,
    multiprocessing.sharedctypes,
    multiprocessing.synchronize,
    torch.utils.data._utils.pin_memory,
    torch.utils.data._utils.signal_handling,
    torch.utils.data._utils.worker,
    streaming_lightning.dataset.streaming_dataset,
    streaming_lightning.storage.local,
)


def main() -> None:
    user = pwd.getpwnam(sys.argv[1])
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ.update(USER=user.pw_name, LOGNAME=user.pw_name, HOME=user.pw_dir)
    sys.argv = [sys.argv[0], sys.argv[2]]
    elastic_run.main()


if __name__ == "__main__":
    main()
