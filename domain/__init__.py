"""Domain rules shared by several flows and jobs (history, alerts, statements): pure, I/O-free."""
