"""The versioned policy file (`data_contracts/policy/rules-<n>.yaml`): thresholds and tables of
rules.md as data, so a change of a number is a new version, recorded on every output."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.settings import CONTRACTS_DIR

POLICY_DIR = CONTRACTS_DIR / "policy"


@cache
def load_policy(version: str | None = None) -> dict[str, Any]:
    """The policy of `version`, or the newest one."""
    files = sorted(POLICY_DIR.glob("rules-*.yaml"), key=lambda p: int(p.stem.split("-")[1]))
    if version is not None:
        files = [p for p in files if p.stem == f"rules-{version}"]
    if not files:
        raise FileNotFoundError(f"{POLICY_DIR}: no policy file rules-{version or '<n>'}.yaml")
    path: Path = files[-1]
    policy = yaml.safe_load(path.read_text("utf-8"))
    if str(policy.get("version")) != path.stem.split("-")[1]:
        raise ValueError(f"{path.name}: version {policy.get('version')!r} does not match the name")
    return policy
