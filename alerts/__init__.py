"""Contribution alerts: the planner turns the balance service's change feed into jobs on a
durable queue; workers in every ``serve`` process send them (issue 16)."""
