"""Incidents: which incident a report joins (grouping), what it changes (compare), the alert kinds."""
