"""`make bench`: every benchmark of the project, each writing its results under bench/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["hashing.py"],
    ["ingest.py"],
    ["night.py"],
    ["history.py", "--persons", "20000", "--nights", "400"],
    ["history.py", "--persons", "2000000", "--nights", "60", "--measure-every", "5"],
]

if __name__ == "__main__":
    for script, *arguments in BENCHMARKS:
        print(f"== {script} {' '.join(arguments)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
