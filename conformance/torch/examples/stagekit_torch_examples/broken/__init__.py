"""Broken stagers: each breaks one property of CorrectStager (see its module's docstring)."""
