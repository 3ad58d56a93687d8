"""Returned mail: what a returned message says (parser), whose it is (return path), and the events it
makes (intake)."""
