"""kcheck: make a kernel configuration right for a container storage driver."""

__version__ = "0.1.0"
