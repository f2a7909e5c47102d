"""Bounded, guarded HTTP shared by feed polling and article pages."""
