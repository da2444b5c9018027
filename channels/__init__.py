"""Channels: one home per messaging platform, each a thin adapter between its platform and
the engine."""
