"""Tidy up after a run that was killed, before the next one starts (under the data dir lock).

Every writer in the pipeline works under a temporary name (`.<name>.<pid>.tmp`, a `.work/`
folder, a `.partial` quarantine folder) and renames into place last, and a folder is swapped
in as `final -> .final.old`, `work -> final`. A run killed at any moment therefore leaves only
such leftovers beside complete files. This module finishes or removes them:

- a quarantine folder left half-way is completed (its reason was written before anything
  moved, so the rejection is never lost);
- a folder swap interrupted between its two renames is rolled back to the old folder;
- a delivery that reached the outbox but not the ledger is recorded;
- work folders and temporary files of dead runs are removed.

The landing zone belongs to the partners (their tool writes temporary files there while it
writes): nothing there is touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.ingest import finish_quarantines
from pipelines.layout import WORK, Layout
from pipelines.ledger import complete_from_outbox
from pipelines.retention import finish_removals

log = logging.getLogger(__name__)

OLD_SUFFIX = ".old"


def swap_in(work: Path, final: Path) -> Path:
    """Replace the folder `final` by `work` (two renames; see `recover` for a kill between)."""
    old = final.with_name(f".{final.name}{OLD_SUFFIX}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(work, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def fresh_folder(folder: Path) -> Path:
    """Empty `folder` (a work folder such as `Layout.linked_work(date)`) for a stage to build a
    folder in."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@dataclass(frozen=True)
class Recovered:
    """What `recover` did: one line per thing, and the quarantines it finished (their
    rejections belong to the run of their date, which reports them)."""

    lines: list[str] = field(default_factory=list)
    quarantines: list[Path] = field(default_factory=list)

    def rejections_of(self, run_date: dt.date) -> list[Path]:
        return [q for q in self.quarantines if q.parent.parent.name == run_date.isoformat()]


def recover(data_dir: Path, landing: Path | None = None) -> Recovered:
    """Finish or remove what a killed run left. `landing` (wherever it is, also inside the
    data directory under another name) is never touched."""
    layout = Layout(data_dir)
    partners_own = {layout.landing.resolve()}
    if landing is not None:
        partners_own.add(Path(landing).resolve())
    quarantines = finish_quarantines(layout.quarantine)
    done = [f"finished quarantine {p}" for p in quarantines]
    done += _roll_back_swaps(layout)
    done += [f"recorded a delivery in {p}" for p in complete_from_outbox(layout.data_dir)]
    done += _remove_work_folders(layout)
    done += [f"finished removing {p}" for p in finish_removals(Layout(data_dir, landing))]
    done += _remove_temporaries(layout.data_dir, partners_own)
    for line in done:
        log.warning("after an interrupted run: %s", line)
    return Recovered(done, quarantines)


def _roll_back_swaps(layout: Layout) -> list[str]:
    """A swap killed between its two renames left `.X.old` without `X`: put it back."""
    done = []
    for base in layout.swapped_roots:
        for old in base.glob(f".*{OLD_SUFFIX}") if base.is_dir() else []:
            final = old.with_name(old.name[1 : -len(OLD_SUFFIX)])
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(old, final)
                done.append(f"restored {final}")
    return done


def _remove_work_folders(layout: Layout) -> list[str]:
    done = []
    for root in (layout.staging, *layout.swapped_roots, layout.ledger):
        work = root / WORK
        if work.exists():
            leftovers = any(work.iterdir())
            shutil.rmtree(work, ignore_errors=True)
            if leftovers:
                done.append(f"removed the work folder {work}")
    return done


def _remove_temporaries(data_dir: Path, partners_own: set[Path]) -> list[str]:
    """Hidden `.*.tmp` files and folders of interrupted atomic writes, outside the landing
    zone (the partners' own temporary files are theirs)."""
    done = []
    for folder, dirs, files in os.walk(data_dir):
        here = Path(folder)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in partners_own]
        for name in [*files, *dirs]:
            if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.wal")):
                path = here / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                done.append(f"removed {path}")
        dirs[:] = [d for d in dirs if not (d.startswith(".") and d.endswith(".tmp"))]
    return done
