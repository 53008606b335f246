"""The stages of cri-overlap as plain functions, plus the CLI. No Airflow imports here:
the DAG in `dags/` and the CLI are two thin faces over the same functions."""
