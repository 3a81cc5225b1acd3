"""Pure functions over a stored request: body views, and what else is read from a capture."""
