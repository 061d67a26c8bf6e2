"""The models the app serves: the ``active`` (and, in shadow, the ``candidate``) version of every symbol+horizon.

Loaded by alias from the MLflow registry and held unwrapped (the fitted backbone and its meta: no pyfunc wrapper on
the request path). :meth:`ModelStore.refresh` asks the registry where the aliases point; a version not loaded yet is
loaded *before* the swap, and the swap replaces one immutable :class:`Snapshot` reference, so a request sees either
the old set or the new one, never a half-loaded model. When the registry cannot be read, the last snapshot keeps
serving and :attr:`ModelStore.registry_error` says why (every response then carries it as a ``degraded`` reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.models.protocol import Backbone
from quantmm_resources.registry import ModelRegistry

log = logging.getLogger(__name__)
ROLES = {"active": "active", "shadow": "candidate"}
BAR_US = 300_000_000  # one 5-minute bar in microseconds  # role in the prediction log -> the alias it serves


@dataclass(frozen=True)
class LoadedVersion:
    """One registered version, unwrapped: what inference needs and what every response names."""

    name: str
    version: str
    symbol: str
    horizon: str
    backbone: Backbone
    meta: dict[str, Any]
    signal: SignalConfig
    cost: CostConfig
    contract_version: str
    trained_until: datetime | None  # the newest row of the registered refit (lineage window.refit_end)
    fingerprint: str = ""  # sha256 of the pickled backbone: versions of one refit share one object (one predict)
    lineage: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    notes: tuple[str, ...] = ()  # what the app assumed while loading (e.g. the default cost config)

    @property
    def input_rows(self) -> int:
        """5-minute feature rows the backbone's window spans (``input_size`` steps of its row stride; 1 when flat)."""
        if not _is_window(self.backbone):
            return 1
        steps = max(1, int(getattr(self.backbone, "input_size", 1) or 1))
        stride = max(1, int(getattr(self.backbone, "window_step_us_", BAR_US) or BAR_US) // BAR_US)
        return steps * stride


def _is_window(backbone: Backbone) -> bool:
    return any(c.__module__.endswith("torch_base") for c in type(backbone).__mro__)


@dataclass(frozen=True)
class Snapshot:
    """The versions served at one moment: ``{(symbol, horizon): version}`` per role."""

    active: dict[tuple[str, str], LoadedVersion] = field(default_factory=dict)
    shadow: dict[tuple[str, str], LoadedVersion] = field(default_factory=dict)
    loaded_at: datetime | None = None

    def symbols(self, with_shadow: bool = False) -> list[str]:
        """The symbols with an active version (and, ``with_shadow``, those with a shadow one only)."""
        return sorted({s for s, _ in self.active} | ({s for s, _ in self.shadow} if with_shadow else set()))

    def horizons(self, symbol: str) -> list[str]:
        from quantmm_assets.core.labels import HORIZONS

        return [h for h in HORIZONS if (symbol, h) in self.active]

    def contract_versions(self) -> set[str]:
        return {v.contract_version for v in (*self.active.values(), *self.shadow.values())}


def cost_config_of(lineage: dict[str, Any]) -> tuple[CostConfig, tuple[str, ...]]:
    """The cost config a version was trained with (the labels' one), or the default with a note saying so."""
    configs = lineage.get("cost_configs") or []
    if len(configs) == 1:
        fields = {k.removeprefix("cost."): float(v) for k, v in configs[0].items() if k != "cost.hash"}
        return CostConfig(**fields), ()
    why = "no cost config in its lineage" if not configs else f"{len(configs)} cost configs in its lineage"
    return CostConfig(), (f"{why}: the default cost config is used for cost_h",)


def _trained_until(lineage: dict[str, Any]) -> datetime | None:
    end = (lineage.get("window") or {}).get("refit_end")
    if not end:
        return None
    ts = datetime.fromisoformat(str(end))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def load_version(registry: ModelRegistry, name: str, version: str) -> LoadedVersion:
    """Load one version through MLflow and unwrap it."""
    model = registry.load(name, version).unwrap_python_model()
    meta = dict(model.meta)
    fingerprint = hashlib.sha256(pickle.dumps(model.backbone, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()
    lineage = registry.lineage(name, version)
    cost, notes = cost_config_of(lineage)
    return LoadedVersion(
        name=name,
        version=str(version),
        symbol=str(meta["symbol"]),
        horizon=str(meta["horizon"]),
        backbone=model.backbone,
        meta=meta,
        signal=model.signal_config,
        cost=cost,
        contract_version=str(meta["feature_contract_version"]),
        trained_until=_trained_until(lineage),
        fingerprint=fingerprint,
        lineage=lineage,
        notes=notes,
    )


class ModelStore:
    """Holds the current :class:`Snapshot`; :meth:`refresh` follows the registry's aliases."""

    def __init__(
        self, registry: ModelRegistry, loader: Callable[[ModelRegistry, str, str], LoadedVersion] = load_version
    ):
        self.registry = registry
        self._loader = loader
        self._cache: dict[tuple[str, str], LoadedVersion] = {}
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self.snapshot = Snapshot()
        self.registry_error: str | None = None
        self._down_since: str | None = None
        self.swaps = 0
        self.load_errors: dict[str, str] = {}

    def refresh(self) -> bool:
        """Read the aliases, load what is new, swap the snapshot; return whether anything changed.

        A registry error keeps the last snapshot and sets :attr:`registry_error`; a version that fails to load keeps
        the version served before it for that slot (and is named in :attr:`load_errors`).
        """
        with self._lock:
            try:
                wanted = self._aliases()
            except Exception as exc:  # the registry is down or unreadable: keep serving what is loaded
                self._down_since = self._down_since or _now()
                error = f"{type(exc).__name__}: {exc}"[:240]
                self.registry_error = (
                    f"registry unreachable since {self._down_since}: serving the versions loaded before ({error})"
                )
                log.warning("%s", self.registry_error)
                return False
            self.registry_error, self._down_since = None, None
            old = self.snapshot
            new_roles: dict[str, dict[tuple[str, str], LoadedVersion]] = {"active": {}, "shadow": {}}
            for (name, role), version in wanted.items():
                loaded = self._get(name, version)
                previous = getattr(old, role).get(_slot(name))
                chosen = loaded or previous
                if chosen is not None:
                    new_roles[role][(chosen.symbol, chosen.horizon)] = chosen
            changed = {k: v.version for k, v in new_roles["active"].items()} != {
                k: v.version for k, v in old.active.items()
            } or {k: v.version for k, v in new_roles["shadow"].items()} != {k: v.version for k, v in old.shadow.items()}
            if changed or old.loaded_at is None:
                self.snapshot = Snapshot(new_roles["active"], new_roles["shadow"], datetime.now(UTC))
                self.swaps += int(changed and old.loaded_at is not None)
            return changed

    def _aliases(self) -> dict[tuple[str, str], str]:
        out = {}
        for name, aliases in self.registry.alias_map().items():
            for role, alias in ROLES.items():
                if alias in aliases and not (role == "shadow" and aliases[alias] == aliases.get("active")):
                    out[(name, role)] = aliases[alias]
        return out

    def _get(self, name: str, version: str) -> LoadedVersion | None:
        key = (name, version)
        if key not in self._cache:
            try:
                loaded = self._loader(self.registry, name, version)
                same = next(
                    (v for v in self._cache.values() if loaded.fingerprint and v.fingerprint == loaded.fingerprint),
                    None,
                )
                if same is not None:  # the same refit registered for another horizon: share the object
                    loaded = dataclasses.replace(loaded, backbone=same.backbone)
                self._cache[key] = loaded
                self.load_errors.pop(name, None)
            except Exception as exc:
                self.load_errors[name] = f"v{version} failed to load: {type(exc).__name__}: {exc}"[:400]
                log.exception("loading %s v%s failed", name, version)
                return None
        return self._cache[key]


def _slot(name: str) -> tuple[str, str]:
    _, symbol, horizon = name.split(".", 2)
    return symbol, horizon


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
