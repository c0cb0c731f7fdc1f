"""Exponential schemes as data (tableaus, multistep rules) and their generic steppers."""
