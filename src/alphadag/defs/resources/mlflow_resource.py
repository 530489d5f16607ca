"""The MLflow resource: where runs and registered models live, and links to them in the MLflow UI.

The local default is a SQLite store at ``.alphadag/mlflow.db`` with artifacts under
``.alphadag/mlartifacts`` (no server, no network; MLflow telemetry is off); production points
``tracking_uri`` at a tracking server. :meth:`MlflowResource.registry` gives the
:class:`~alphadag.models.registry.ModelRegistry` every caller registers, gates and loads through;
this resource only carries the configuration. Credentials for a
remote server come from MLflow's own environment variables, never from this config, tags or params.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from alphadag import settings

if TYPE_CHECKING:  # mlflow takes seconds to import: loading the code location must not pay it
    from mlflow.tracking import MlflowClient

    from alphadag.models.registry import ModelRegistry, RegisteredVersion


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other stores)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry configuration (local SQLite store by default).

    Bounded waits: before the first call to a tracking server, MLflow's HTTP client is given
    at most 2 retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES=2), a backoff factor of 1
    (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1) and 10 s per try (MLFLOW_HTTP_REQUEST_TIMEOUT=10).
    A closed port then fails in 2 to 6 s (measured; MLflow's defaults: 247 s) and a server that
    never answers in about 35 s (MLflow's defaults: about 20 minutes): serving falls back to
    the baseline with a reason and training stops before fitting, naming the URI. A value
    already set in the environment wins (set it on the run worker and the daemon to wait
    longer, e.g. for a rate-limited server).

    Integrity: every registered version records the sha256 of its skops file and MLmodel (version
    tags alphadag.model_sha256, alphadag.mlmodel_sha256, alphadag.model_file; also on the run),
    and every load checks the bytes it deserialises against them.
    """

    tracking_uri: str = Field(settings.DEFAULT_MLFLOW_URI, description="MLflow tracking URI")
    registry_uri: str | None = Field(None, description="model registry URI (default: tracking)")
    artifact_location: str = Field(
        settings.DEFAULT_MLFLOW_ARTIFACTS, description="artifact root of a newly created experiment"
    )
    experiment: str = "alphadag"
    model_name: str = "alphadag-returns"

    @property
    def resolved_registry_uri(self) -> str:
        return self.registry_uri or self.tracking_uri

    def _resolved_artifact_location(self) -> str:
        # a relative path would be resolved against whatever directory a later process runs in
        if "://" in self.artifact_location:
            return self.artifact_location
        return Path(self.artifact_location).resolve().as_uri()

    def client(self) -> MlflowClient:
        """A client bound to this resource's tracking and registry stores."""
        from alphadag.models.registry import (  # sets the offline defaults first
            MlflowClient,
            bound_http_waits,
        )

        bound_http_waits()  # before any call: MLflow reads them on every request
        for uri in {self.tracking_uri, self.resolved_registry_uri}:
            path = _sqlite_path(uri)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.resolved_registry_uri)

    def registry(self) -> ModelRegistry:
        """The :class:`~alphadag.models.registry.ModelRegistry` of ``model_name`` in these stores
        (register, gate, aliases, history and the one cached ``load``)."""
        from alphadag.models.registry import ModelRegistry

        return ModelRegistry(
            self.model_name,
            tracking_uri=self.tracking_uri,
            registry_uri=self.resolved_registry_uri,
            experiment=self.experiment,
            artifact_location=self._resolved_artifact_location(),
            client=self.client(),
        )

    def ensure_experiment(self) -> str:
        """The experiment id, creating the experiment under ``artifact_location`` if missing."""
        from alphadag.models import registry

        return registry.ensure_experiment(
            self.client(), self.experiment, artifact_location=self._resolved_artifact_location()
        )

    def log_and_register(self, **kwargs: Any) -> RegisteredVersion:
        """:func:`alphadag.models.registry.log_and_register` with this resource's stores and names."""
        from alphadag.models import registry

        self.ensure_experiment()
        return registry.log_and_register(
            tracking_uri=self.tracking_uri,
            registry_uri=self.resolved_registry_uri,
            experiment=self.experiment,
            model_name=self.model_name,
            **kwargs,
        )

    def ui_base(self) -> str:
        """The MLflow UI's base URL (``MLFLOW_UI_BASE``, read now)."""
        return settings.Settings.from_env().mlflow_ui_base.rstrip("/")

    def ui_url(self, run_id: str, experiment_id: str | None = None) -> str:
        """Link to a run in the MLflow UI (base from ``MLFLOW_UI_BASE``), for asset metadata."""
        if experiment_id is None:
            experiment_id = self.client().get_run(run_id).info.experiment_id
        return f"{self.ui_base()}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_version_url(self, version: int | str) -> str:
        """Link to a registered model version in the MLflow UI."""
        return f"{self.ui_base()}/#/models/{self.model_name}/versions/{version}"
