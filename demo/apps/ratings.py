#!/usr/bin/python3
"""bookinfo ratings (Istio's sample, in Python): two reviewers' stars."""
from common import serve


def ratings(h, rest):
    try:
        pid = int(rest)
    except ValueError:
        return h.send_json(400, {"error": "please provide numeric product ID"})
    return h.send_json(200, {"id": pid, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})


serve({"/health": lambda h, r: h.send_json(200, {"status": "Ratings is healthy"}),
       "/ratings": ratings})
