"""A FastAPI app that hands work to relayq from its request handlers, with relayq.aio:

- POST /reports enqueues a job and awaits its result (up to 10 s) without blocking the loop;
- POST /reports/later only enqueues it (202 and the job's id); GET /reports/{id} reads it.

Run it beside a worker (both read $RELAYQ_REDIS_URL):

    relayq-worker --app tasks:app
    granian --interface asgi main:api      # or: uvicorn main:api
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from tasks import QUEUE, report

import relayq
import relayq.aio


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    api.state.queue = relayq.aio.Queue(QUEUE)  # $RELAYQ_REDIS_URL; one pool for all requests
    yield
    await api.state.queue.aclose()


api = FastAPI(lifespan=lifespan)


@api.post("/reports")
async def make_report(body: dict[str, Any]) -> dict[str, Any]:
    job = await api.state.queue.enqueue(body, type=report.name)
    try:
        done = await api.state.queue.wait_for_job(job.id, timeout=10)
    except TimeoutError:
        raise HTTPException(504, f"job {job.id} is not finished yet") from None
    if done.state != "succeeded":
        raise HTTPException(422, {"id": job.id, "state": done.state, "error": done.last_error})
    return {"id": job.id, **done.result}


@api.post("/reports/later", status_code=202)
async def make_report_later(body: dict[str, Any]) -> dict[str, str]:
    return {"id": (await api.state.queue.enqueue(body, type=report.name)).id}


@api.get("/reports/{job_id}")
async def read_report(job_id: str) -> dict[str, Any]:
    try:
        job = await api.state.queue.get(job_id)
    except (relayq.JobNotFound, relayq.InvalidJobId):
        raise HTTPException(404, f"no job {job_id}") from None
    return {"id": job.id, "state": job.state, "result": job.result}
