"""Feeds: polling with conditional GET and backoff, parsing entries, and fetching article pages."""
