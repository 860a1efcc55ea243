-- Runs once, when the compose deployment's PostgreSQL starts on an empty volume (the image's
-- /docker-entrypoint-initdb.d). POSTGRES_DB (movierec) holds the ratings store; MLflow's
-- tracking and registry, and Airflow's metadata (the `airflow` profile), get databases of their
-- own on the same server, owned by the same user.
CREATE DATABASE mlflow;
CREATE DATABASE airflow;
