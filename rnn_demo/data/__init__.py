"""Corpora built from published sources into the plain-text splits that training reads."""
