"""The dependencies routes declare (``Annotated`` aliases): the serving state, the settings, the operator of a
mutating call, and the Dagster instance the gated promotion reads."""

from __future__ import annotations

import hmac
from typing import Annotated

import dagster as dg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quantmm_assets.core.labels import HORIZONS
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.settings import QuantmmSettings, get_settings
from quantmm_serving.state import ServingState

_bearer = HTTPBearer(auto_error=False)


def get_state(request: Request) -> ServingState:
    return request.app.state.serving


def get_instance(settings: Annotated[QuantmmSettings, Depends(get_settings)]) -> dg.DagsterInstance:
    """The persistent Dagster instance (its check results are what the gated promotion reads)."""
    return dg.DagsterInstance.from_config(str(ensure_dagster_home(settings)))


def require_operator(
    settings: Annotated[QuantmmSettings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The operator a bearer token names (settings ``serve_tokens``); 401 without a token, 403 for an unknown one."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status_code=401,
            detail="this call changes the registry: send 'Authorization: Bearer <token>' (a token of serve_tokens)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    for token, operator in settings.serve_tokens.items():
        if hmac.compare_digest(token.encode(), credentials.credentials.encode()):
            return operator
    why = "no operator tokens are configured (QUANTMM_SERVE_TOKENS)" if not settings.serve_tokens else "unknown token"
    raise HTTPException(status_code=403, detail=f"token refused: {why}")


def valid_horizon(horizon: str) -> str:
    if horizon not in HORIZONS:
        raise HTTPException(status_code=422, detail=f"unknown horizon {horizon!r}: one of {list(HORIZONS)}")
    return horizon


StateDep = Annotated[ServingState, Depends(get_state)]
SettingsDep = Annotated[QuantmmSettings, Depends(get_settings)]
OperatorDep = Annotated[str, Depends(require_operator)]
InstanceDep = Annotated[dg.DagsterInstance, Depends(get_instance)]
