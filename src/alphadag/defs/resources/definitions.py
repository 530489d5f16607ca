"""The one place resources are chosen: local defaults, overridden by environment variables.

The variables are read (``alphadag.settings.Settings.from_env``) each time the definitions load.
"""

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
    env = settings.Settings.from_env()
    return dg.Definitions(
        resources={
            "io_manager": ParquetPartitionIOManager(data_root=env.data_root),
            "market_data": MarketDataResource(
                source=env.source,  # type: ignore[arg-type]
                tickers=list(env.tickers),
                landing_dir=env.landing_dir,
            ),
            "mlflow": MlflowResource(
                tracking_uri=env.mlflow_uri,
                artifact_location=env.mlflow_artifacts,
            ),
            "alerts": AlertSink(
                jsonl_path=env.alert_log,
                # a secret: read from the environment at run time, never stored in config
                webhook_url=(
                    dg.EnvVar("ALPHADAG_ALERT_WEBHOOK_URL")
                    if os.environ.get("ALPHADAG_ALERT_WEBHOOK_URL")
                    else None
                ),
            ),
        }
    )
