"""The browser and API side: pages, the JSON API, access checks, security headers."""
