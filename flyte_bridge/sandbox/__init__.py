"""An embedded, single-process Flyte control plane for local development and tests.

``start_sandbox()`` starts one in-process; ``flyte-bridge sandbox start`` runs one in the
foreground. Importing this package loads neither grpc nor flytekit.
"""

from __future__ import annotations

from flyte_bridge.sandbox.api import Sandbox, default_data_dir, start_sandbox

__all__ = ["Sandbox", "default_data_dir", "start_sandbox"]
