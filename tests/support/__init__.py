"""Test support code that is not a test: the loopback API simulator (``python -m tests.support.apisim``)."""
