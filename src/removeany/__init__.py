"""RemoveAny: self-hostable AI image processing."""

__version__ = "0.1.0"
