"""An embedded, single-process Flyte control plane for local development and tests."""
