#!/usr/bin/python3
"""bookinfo details (Istio's sample, in Python): the book's facts."""
from common import serve


def details(h, rest):
    try:
        pid = int(rest)
    except ValueError:
        return h.send_json(400, {"error": "please provide numeric product id"})
    return h.send_json(200, {
        "id": pid, "author": "William Shakespeare", "year": 1595, "type": "paperback",
        "pages": 200, "publisher": "PublisherA", "language": "English",
        "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"})


serve({"/health": lambda h, r: h.send_json(200, {"status": "Details is healthy"}),
       "/details": details})
