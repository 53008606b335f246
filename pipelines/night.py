"""What one night's run knows as it goes, handed from stage to stage.

The CLI keeps one `Night` in memory for the whole run; the Airflow DAG hands its JSON part
(`to_xcom`) from task to task and rebuilds it (`from_xcom`). A stage reads only the JSON part of
the stages before it (the run date, when it started, the ingest outcomes, the timings), so the
two ways of running give the same result; the rich results (`results`) are for the CLI's output.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import EXIT_OK, EXIT_REJECTIONS
from pipelines.layout import Layout
from pipelines.settings import HUB_KEY_ENV, Settings
from privacy.keys import KeyFileError, KeyMaterial, load_key_file


def hub_key(settings: Settings) -> KeyMaterial:
    """The hub key from `--hub-key` or `CRI_HUB_KEY_FILE`; never from code. Without one, say
    where the demo keeps its key, since that is where a first-time user has one."""
    if settings.hub_key_file is None:
        demo = settings.layout.demo_key("hub")
        hint = (
            f"the demo made one: --hub-key {demo}"
            if demo.is_file()
            else f"`cri-overlap demo --data-dir {settings.data_dir}` makes one in {demo}"
        )
        raise KeyFileError(f"no hub key: pass --hub-key FILE or set {HUB_KEY_ENV} ({hint})")
    return load_key_file(settings.hub_key_file, "hub")


@dataclass
class Night:
    """One run of one extract date."""

    run_date: dt.date
    settings: Settings
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # `outcome_record`s
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, in pipeline order
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # per stage, JSON
    results: dict[str, Any] = field(default_factory=dict)  # per stage, in this process only
    recovered: list[Path] = field(default_factory=list)  # rejections a killed run left
    on_dataset: Callable[[Any], None] | None = None
    # link, plans and signals share one in-memory DuckDB session in a one-process run
    # (`pipelines.session`); under Airflow (a process per task) there is none
    session: Any = None
    _key: KeyMaterial | None = None

    @property
    def layout(self) -> Layout:
        return self.settings.layout

    @property
    def key(self) -> KeyMaterial:
        """The hub key, loaded once per process."""
        if self._key is None:
            self._key = hub_key(self.settings)
        return self._key

    # the JSON part, handed between Airflow tasks
    def to_xcom(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date.isoformat(),
            "started": self.started.isoformat(),
            "outcomes": self.outcomes,
            "seconds": self.seconds,
            "summaries": self.summaries,
            "pid": os.getpid(),
        }

    @classmethod
    def from_xcom(cls, data: dict[str, Any], settings: Settings) -> Night:
        return cls(
            run_date=dt.date.fromisoformat(data["run_date"]),
            settings=settings,
            started=dt.datetime.fromisoformat(data["started"]),
            outcomes=list(data["outcomes"]),
            seconds=dict(data["seconds"]),
            summaries=dict(data["summaries"]),
        )

    # what the CLI and the tests read
    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o["status"] == "rejected"]

    @property
    def selection(self) -> Any:
        return self.results.get("link", (None, None))[0]

    @property
    def link(self) -> Any:
        return self.results.get("link", (None, None))[1]

    @property
    def plans(self) -> Any:
        return self.results.get("plans")

    @property
    def feedback(self) -> Any:
        """The night's feedback intake (`pipelines.feedback.FeedbackIntake`)."""
        return self.results.get("feedback")

    @property
    def signals(self) -> Any:
        return self.results.get("signals")

    @property
    def delivery(self) -> Any:
        return self.results.get("publish", (None, None, None))[0]

    @property
    def rederived(self) -> list[dt.date]:
        return self.results.get("publish", (None, [], None))[1]

    @property
    def snapshot(self) -> Any:
        return self.results.get("publish", (None, None, None))[2]

    @property
    def report(self) -> Any:
        return self.results.get("report")

    @property
    def incomplete(self) -> bool:
        """Anything rejected, missing, carried forward or left out tonight."""
        link = self.summaries.get("link", {})
        return bool(self.rejected) or bool(link.get("stale") or link.get("left_out"))

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTIONS if self.incomplete else EXIT_OK
