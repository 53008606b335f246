"""Data contracts as data: load the ODCS v3 YAML files in `data_contracts/`.

The contract file is the single definition of a dataset's columns, types and rules; code asks it
for column names instead of repeating them. Validation against the `open-data-contract-standard`
model catches a malformed contract before it can silently check nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from open_data_contract_standard.model import OpenDataContractStandard, SchemaProperty

from pipelines.errors import CriError
from pipelines.settings import CONTRACTS_DIR

# Datasets partners deliver; the file name (without extension) names the contract. A contract
# with the customProperty `optional: true` (identities) is never expected nor carried forward
# into the link: a partner may or may not deliver it.
PARTNER_DATASETS = ("claims", "income", "identities")
_CONTRACT_FILE = re.compile(r"^(?P<name>[a-z_]+)-(?P<version>\d+\.\d+\.\d+)\.yaml$")


class ContractError(CriError):
    """A contract file is missing or malformed (or asks for a rule the compiler cannot write):
    the operator's to fix, reported in one line."""


@dataclass(frozen=True)
class Contract:
    """One contract version: its ODCS model plus the few facts code asks for most."""

    name: str
    version: str
    path: Path
    model: OpenDataContractStandard

    @property
    def properties(self) -> list[SchemaProperty]:
        return list(self.model.schema_[0].properties or [])

    @property
    def columns(self) -> list[str]:
        """Column names in contract order (the order of the delivered file)."""
        return [p.name for p in self.properties]

    @property
    def physical_types(self) -> dict[str, str]:
        """DuckDB type per column, e.g. {'outstanding_cents': 'BIGINT'}."""
        return {p.name: p.physicalType for p in self.properties}

    def custom_property(self, name: str, default: object = None) -> object:
        for prop in self.model.customProperties or []:
            if prop.property == name:
                return prop.value
        return default


@cache
def load_contract(name: str, version: str) -> Contract:
    """Load and validate `data_contracts/<name>-<version>.yaml`."""
    path = CONTRACTS_DIR / f"{name}-{version}.yaml"
    if not path.is_file():
        raise ContractError(f"no contract {name} {version} (looked for {path.name})")
    model = OpenDataContractStandard.model_validate(yaml.safe_load(path.read_text("utf-8")))
    if model.name != name or model.version != version:
        raise ContractError(f"{path.name}: declares {model.name} {model.version}")
    return Contract(name=name, version=version, path=path, model=model)


def available_versions(name: str) -> list[str]:
    """All versions of a contract present in `data_contracts/`, oldest first."""
    versions = []
    for path in CONTRACTS_DIR.glob(f"{name}-*.yaml"):
        match = _CONTRACT_FILE.match(path.name)
        if match and match["name"] == name:
            versions.append(match["version"])
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def current_contract(name: str) -> Contract:
    """The newest version of a contract: what the partner tool writes."""
    versions = available_versions(name)
    if not versions:
        raise ContractError(f"no contract named {name!r} in {CONTRACTS_DIR}")
    return load_contract(name, versions[-1])
