"""The versions the pipeline writes under, in a module light enough for the DAG to import at
parse time (the contract and policy files themselves are read by `pipelines.contracts` and
`pipelines.policy`)."""

from __future__ import annotations

# The contract of the hub's own outputs (link, plans, signals, the analysts' snapshot).
ANALYTICS_CONTRACT = ("analytics", "2.0.0")
