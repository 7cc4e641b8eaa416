"""Probabilistic matching of live contacts with Splink: records, settings, model, proposals."""
