"""The domain: bins and their rules, the tables, keys, the clock. Imports nothing above it."""
