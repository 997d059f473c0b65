"""flyte-bridge: drive and monitor Flyte executions from Airflow and Dagster.

Importing the package is cheap: the gRPC client and its stubs load on first use.
"""

__version__ = "0.1.0"
