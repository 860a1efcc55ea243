"""Airflow DAG: movierec's scheduled retraining, for deployments that run Airflow.

It runs the same CLI stages as the embedded scheduler (``movierec schedule``): a health check of
the ratings store and the tracking store first, then a retraining that runs only when new ratings
have arrived since the champion's data and promotes by the usual rule. The workers need movierec
installed and the same ``MOVIEREC_*`` environment as the API (database URL, MLflow tracking URI).

Settings, as Airflow variables or environment variables of the workers:
    MOVIEREC_RETRAIN_CRON   when to check (crontab, UTC; default 03:00 every day)
    MOVIEREC_PARAMS         the pipeline's params.yaml (default /opt/movierec/params.yaml)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

CRON = os.environ.get("MOVIEREC_RETRAIN_CRON", "0 3 * * *")
PARAMS = os.environ.get("MOVIEREC_PARAMS", "/opt/movierec/params.yaml")

with DAG(
    dag_id="movierec_retrain",
    description="Retrain movierec when new ratings arrive; promote only a better model.",
    schedule=CRON,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two retrainings at once would only queue on the pipeline's lock
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["movierec", "mlops"],
) as dag:
    health_check = BashOperator(
        task_id="health_check",
        # The store answers and holds ratings; the registry answers.
        bash_command="movierec data stats --json > /dev/null && movierec models list --json > /dev/null",
        retries=3,
    )
    retrain = BashOperator(
        task_id="retrain_if_new_ratings",
        bash_command=f"movierec schedule --once --config {PARAMS}",
        execution_timeout=timedelta(hours=6),
    )
    health_check >> retrain
