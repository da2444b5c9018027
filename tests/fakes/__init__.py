"""Fake platform servers for the channel tests (real client libraries talk HTTP to them)."""
