"""What a capture is answered: custom responses, rules, templates, handshakes, CORS, failure
rehearsal. Pure: plain data in and out, no Flask, no database.
"""
