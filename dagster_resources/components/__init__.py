"""YAML component types."""
