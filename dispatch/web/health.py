"""Health and metrics, for whoever runs the process: ``/healthz`` (it answers), ``/readyz``
(its database, and in Kafka mode its broker, can be reached), ``/metrics`` (Prometheus text:
requests by route and status, command outcomes by code, projection lag; with ``--workers N``
summed over the workers). No token needed;
they say nothing about tickets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process answers")
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Its database (and broker) can be reached")
def readyz(request: Request) -> JSONResponse:
    service = request.app.state.service
    checks = service.ready()
    ok = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if service.notices():
        body["notifications"] = service.notices()  # channels down: said, the door stays ready
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    service = request.app.state.service
    lag = service.lag()
    if lag is not None:
        service.metrics.lag.set(lag)
    return Response(generate_latest(service.metrics.exposed()), media_type=CONTENT_TYPE_LATEST)
