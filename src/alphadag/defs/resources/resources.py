"""The one place resources are chosen: local defaults, overridden by environment variables."""

import os

import dagster as dg

from alphadag import settings
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager


@dg.definitions
def resources() -> dg.Definitions:
    """IO manager, market-data source, MLflow store and alert sink for the code location."""
    return dg.Definitions(
        resources={
            "io_manager": ParquetPartitionIOManager(data_root=settings.data_root()),
            "market_data": MarketDataResource(
                source=settings.source_name(),  # type: ignore[arg-type]
                tickers=settings.tickers(),
                landing_dir=settings.landing_dir(),
            ),
            "mlflow": MlflowResource(
                tracking_uri=settings.mlflow_tracking_uri(),
                artifact_location=settings.mlflow_artifacts(),
            ),
            "alerts": AlertSink(
                jsonl_path=settings.alert_log(),
                # a secret: read from the environment at run time, never stored in config
                webhook_url=(
                    dg.EnvVar("ALPHADAG_ALERT_WEBHOOK_URL")
                    if os.environ.get("ALPHADAG_ALERT_WEBHOOK_URL")
                    else None
                ),
            ),
        }
    )
