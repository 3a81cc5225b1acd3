"""The public capture URL: the HTTP server, the capture gate, and what a capture is answered."""
