"""`make bench`: every benchmark of the project, each writing its results under bench/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["hashing.py", "ingest.py", "night.py", "history.py"]

if __name__ == "__main__":
    for script in BENCHMARKS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], check=True)
