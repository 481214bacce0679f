"""``pyscf-io status``: the progress of a run (finished and failed structures) and its SLURM jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .workdir import WorkDir


def show_status(workdir: Path, watch: float | None, *, say: Callable[[Any], None], fail: Callable[[str], None]) -> None:
    """Report once (one ``squeue`` call), or every ``watch`` seconds until nothing is pending."""
    from .report import counts, failure_lines, summary_table
    from .slurm import jobs, queue

    wd = WorkDir(workdir)
    while True:
        say(summary_table(wd, title=f"pyscf-io status of {wd.path}"))
        submitted = jobs(wd)
        if submitted:
            states = queue([j["array_job"] for j in submitted] + [j["merge_job"] for j in submitted])
            if states is None:
                say("squeue is not available here")
            else:
                for j in submitted:
                    array, merge = states.get(j["array_job"], []), states.get(j["merge_job"], [])
                    summary = ", ".join(f"{s}: {array.count(s)}" for s in sorted(set(array))) or "not in queue"
                    say(
                        f"submission {j['submission']}: array job {j['array_job']} ({summary}); "
                        f"merge job {j['merge_job']} ({merge[0] if merge else 'not in queue'})"
                    )
        for line in failure_lines(wd):
            fail(line)
        if watch is None or counts(wd)["pending"] == 0:
            break
        time.sleep(watch)
