"""The application around the flows: settings, composition root, command line, web app,
metrics, logging."""
