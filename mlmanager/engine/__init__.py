"""Plain-Python ML engine; no Django imports."""
