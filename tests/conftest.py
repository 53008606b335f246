"""Shared fixtures: one small, real night of deliveries made with the partner tool."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from pipelines.pseudonymise import pseudonymise_extract
from pipelines.synth import synth
from privacy.keys import new_key
from tests.helpers import EXTRACT_DATE

NIGHT_PARTNERS = (("BD", "claims"), ("CJIB", "claims"), ("TSL", "claims"), ("TSL", "income"))


@pytest.fixture(scope="session")
def linkage_key():
    return new_key("linkage")


@pytest.fixture(scope="session")
def night_template(tmp_path_factory, linkage_key) -> Path:
    """landing/<EXTRACT_DATE>/ for BD, CJIB and TSL (claims + income), 300 synthetic persons."""
    root = tmp_path_factory.mktemp("night")
    raw = synth(root / "raw", extract_date=EXTRACT_DATE, persons=300, seed=5)
    landing = root / "landing" / EXTRACT_DATE.isoformat()
    for partner, dataset in NIGHT_PARTNERS:
        path, _ = raw.files[(partner, dataset)]
        pseudonymise_extract(
            path, landing / partner, key=linkage_key, partner=partner, extract_date=EXTRACT_DATE
        )
    for reject_file in landing.rglob("*.rejects.csv"):
        reject_file.unlink()
    return root / "landing"


@pytest.fixture()
def night(tmp_path, night_template) -> Path:
    """A fresh data dir whose landing zone holds a copy of the template night."""
    shutil.copytree(night_template, tmp_path / "landing")
    return tmp_path


_exit_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """After pytest's summary, leave without the interpreter's final teardown: Great Expectations
    keeps DuckDB objects referenced until shutdown, and DuckDB's bindings would then print a page
    of harmless "nanobind: leaked ..." lines after the summary (see pipelines/cli.py `_exit`)."""
    if os.environ.get("CRI_TEST_FULL_TEARDOWN"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status["code"])
