"""The component-based half of the example: each folder holds a defs.yaml."""
