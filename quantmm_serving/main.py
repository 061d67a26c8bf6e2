"""The FastAPI app: ``create_app`` builds it and includes one router per area; ``lifespan`` loads the models.

Run it with ``quantmm serve`` (uvicorn), or ``uvicorn --factory quantmm_serving.main:create_app``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from quantmm_resources.environment import build_resources
from quantmm_resources.lake import Lake
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.settings import QuantmmSettings, get_settings
from quantmm_serving.middleware import BodyLimit, LoadShedding, RequestMetrics
from quantmm_serving.model_store import ModelStore
from quantmm_serving.prediction_writer import PredictionWriter
from quantmm_serving.routes import health, monitoring, paper, portfolio, predict, registry
from quantmm_serving.state import ServingState

log = logging.getLogger(__name__)


def build_state(settings: QuantmmSettings, model_registry: ModelRegistry | None = None) -> ServingState:
    """The serving state of ``settings``: the registry, the lake and the prediction log of that environment."""
    model_registry = model_registry or build_resources(settings)["registry"]
    return ServingState(
        settings, ModelStore(model_registry), Lake(settings.lake_dir), PredictionWriter(settings.resolved_ops_url)
    )


def create_app(settings: QuantmmSettings | None = None, state: ServingState | None = None) -> FastAPI:
    """Build the app on ``settings`` (default: ``get_settings()``), or on a prepared ``state`` (tests)."""
    settings = settings or (state.settings if state is not None else get_settings())
    state = state or build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        log.info("serving %d active versions", len(state.store.snapshot.active))
        try:
            yield
        finally:
            state.close()

    app = FastAPI(title="quantmm", version="1", lifespan=lifespan)
    app.state.serving = state
    app.dependency_overrides[get_settings] = lambda: settings
    for router in (predict.router, portfolio.router, registry.router, paper.router, monitoring.router, health.router):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "invalid request: " + "; ".join(errors)})

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(LoadShedding, limit=settings.max_in_flight)
    app.add_middleware(RequestMetrics, metrics=state.metrics)  # outermost: shed requests are counted too
    return app
