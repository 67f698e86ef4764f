from tests.api.conftest import client

__all__ = ["client"]
