"""Training and tuning jobs (admin): started in the background, one at a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from movierec.models import MODELS
from movierec.serving.deps import AdminDep, JobCommandsDep, JobsDep, MetricsDep, errors
from movierec.serving.jobs import Job
from movierec.serving.schemas import JobResponse, JobsStatus, TrainingRequest, TuningRequest

router = APIRouter(tags=["training"], dependencies=[AdminDep], responses=errors(401, 403))


# OpenAPI links: a started job is followed at GET /training/{job_id} (clients and the
# stateful fuzzing of tests/serving/test_fuzz.py walk them).
_FOLLOW_JOB: dict[int | str, dict[str, Any]] = {
    status.HTTP_202_ACCEPTED: {
        "links": {
            "GetJob": {
                "operationRef": "#/paths/~1training~1{job_id}/get",
                "parameters": {"job_id": "$response.body#/job_id"},
                "description": "The job just started: its status, exit code and log.",
            }
        }
    }
}


def job_response(job: Job) -> JobResponse:
    return JobResponse.model_validate(job, from_attributes=True)


@router.post(
    "/training",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_FOLLOW_JOB, **errors(409, 413, 422)},
)
def start_training(
    jobs: JobsDep,
    commands: JobCommandsDep,
    metrics: MetricsDep,
    body: TrainingRequest | None = None,
) -> JobResponse:
    """Start the training pipeline in the background; 409 while a job runs. A champion it
    promotes is loaded when the job ends."""
    config = body.config if body is not None else None
    job = jobs.start("training", commands.training(config))
    metrics.jobs.labels("training", "started").inc()
    return job_response(job)


@router.post(
    "/tuning",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_FOLLOW_JOB, **errors(409, 413, 422)},
)
def start_tuning(
    body: TuningRequest, jobs: JobsDep, commands: JobCommandsDep, metrics: MetricsDep
) -> JobResponse:
    """Start a hyper-parameter study in the background; 409 while a job runs."""
    if body.model not in MODELS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown model {body.model!r}; known models: {', '.join(sorted(MODELS))}",
        )
    job = jobs.start("tuning", commands.tuning(body.model, body.trials))
    metrics.jobs.labels("tuning", "started").inc()
    return job_response(job)


@router.get("/training/status")
def training_status(jobs: JobsDep) -> JobsStatus:
    """The running job, if any, and the latest one."""
    running, last = jobs.running(), jobs.last()
    return JobsStatus(
        running=job_response(running) if running else None,
        last=job_response(last) if last else None,
    )


@router.get("/training/{job_id}", responses=errors(404))
def training_job(
    job_id: Annotated[str, Path(max_length=64, description="A job id.")], jobs: JobsDep
) -> JobResponse:
    """One job (training or tuning): status, exit code, the tail of its log."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return job_response(job)
