"""Contribution statements (PDF), balance charts (PNG) and the JHT projection: pure, CPU-only
functions the app runs off the event loop."""
