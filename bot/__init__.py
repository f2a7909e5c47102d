"""borderwatch: watches news about the Afghanistan-Pakistan border and alerts when the story moves."""

__version__ = "0.1.0"
