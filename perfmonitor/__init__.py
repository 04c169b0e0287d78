"""perfmonitor: performance monitoring for Django sites."""

__version__ = "0.1.0"
