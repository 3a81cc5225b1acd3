"""Pure functions over a stored request: body views, copy-as snippets, verdicts, exports."""
