"""Edits that turn a good delivery into a specific bad one, for the rejection corpus."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipelines.fileio import sha256_file


def manifest(folder: Path, dataset: str = "claims") -> dict:
    return json.loads((folder / f"{dataset}.manifest.json").read_text())


def write_manifest(folder: Path, document: dict, dataset: str = "claims") -> None:
    (folder / f"{dataset}.manifest.json").write_text(json.dumps(document))


def resign(folder: Path, dataset: str = "claims", *, rows: int | None = None) -> None:
    """Recompute sha256 (and row_count) as an honest partner tool would after an edit."""
    document = manifest(folder, dataset)
    data = folder / document["file"]
    document["sha256"] = sha256_file(data)
    if rows is not None:
        document["row_count"] = rows
    write_manifest(folder, document, dataset)


def edit_lines(
    folder: Path,
    change: Callable[[list[str]], list[str]],
    dataset: str = "claims",
    *,
    recount: bool = True,
) -> None:
    """Change the CSV's lines (header first), then re-sign the manifest."""
    path = folder / f"{dataset}.csv"
    lines = path.read_text().splitlines()
    lines = change(lines)
    path.write_text("\n".join(lines) + "\n")
    resign(folder, dataset, rows=len(lines) - 1 if recount else None)


def set_field(folder: Path, row: int, column: str, value: str, dataset: str = "claims") -> None:
    """Set one field of data row `row` (1-based, so it sits on line row + 1)."""

    def change(lines: list[str]) -> list[str]:
        header = lines[0].split(";")
        fields = lines[row].split(";")
        fields[header.index(column)] = value
        lines[row] = ";".join(fields)
        return lines

    edit_lines(folder, change, dataset)
