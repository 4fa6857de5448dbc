"""Liveness, readiness, what is loaded, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import EngineDep, require_api_key
from service.api.routes import PROTECTED
from service.schemas import HealthPublic, InfoPublic, ModelPublic, ReadyPublic

public_router = APIRouter(tags=["system"])
router = APIRouter(tags=["system"], dependencies=[Depends(require_api_key)], responses=PROTECTED)


@public_router.get("/health", response_model=HealthPublic, summary="The process is alive")
async def health() -> HealthPublic:
    return HealthPublic()


@public_router.get(
    "/ready",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic}},
    summary="The model and the gallery are loaded",
)
async def ready(request: Request) -> ReadyPublic | JSONResponse:
    """Ready as soon as the eager embedder is loaded; ``embedder`` says whether the compiled
    one is still being built (``compiling``) or serves (``compiled``)."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None or not engine.ready:
        body = ReadyPublic(ready=False, detail="starting up or shutting down")
        return JSONResponse(body.model_dump(), status_code=503)
    if not engine.follower.healthy:  # the database is down: this replica cannot serve
        body = ReadyPublic(ready=False, detail=engine.follower.problem or "database unavailable")
        return JSONResponse(body.model_dump(), status_code=503)
    detail = "model and gallery index loaded"
    if engine.embedder_state == "compiling":
        detail += "; serving with the eager embedder while the compiled one is built"
    return ReadyPublic(ready=True, detail=detail, embedder=engine.embedder_state)


@router.get("/info", response_model=InfoPublic, summary="The model, the index and the gallery")
async def info(engine: EngineDep) -> InfoPublic:
    embedder, store = engine.embedder, engine.store
    size, labels = await engine.offload(lambda: (store.count(), len(store.labels())))
    model = ModelPublic(
        fingerprint=embedder.fingerprint,
        name=embedder.info.name,
        arch=embedder.info.arch,
        embedding_dim=embedder.embedding_dim,
        input_size=embedder.input_size,
        crop_size=embedder.crop_size,
        device=str(embedder.device),
        precision=embedder.precision,
        compiled=embedder.compiled,
        metrics=embedder.info.metrics,
        alignment=embedder.info.alignment.kind,
        thresholds=embedder.info.thresholds,
        flip_average=embedder.info.flip_average,
    )
    return InfoPublic(
        model=model,
        embedder=engine.embedder_state,
        detector=engine.settings.detector,
        index_type=store.index_type,
        index_on_gpu=store.on_gpu,
        gallery_size=size,
        labels=labels,
        max_upload_bytes=engine.settings.max_upload_bytes,
        max_files=engine.settings.max_files,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics",
)
async def metrics(engine: EngineDep) -> Response:
    body = await engine.offload(engine.metrics.render)
    return Response(body, media_type=engine.metrics.content_type)
