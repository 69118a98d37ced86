#!/usr/bin/python3
"""bookinfo reviews (Istio's sample, in Python). v1 shows no stars and never calls
ratings; v2 calls ratings and shows black stars, v3 red stars. The ratings call times out
after 10 s (black) or 2.5 s (red), as the sample's Java code does."""
import os
import sys

from common import forward_headers, get_json, serve, service_url

VERSION = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SERVICE_VERSION", "v1")
STARS = VERSION != "v1"
COLOR = "red" if VERSION == "v3" else "black"
RATINGS_TIMEOUT_S = 10.0 if COLOR == "black" else 2.5
PODNAME = os.environ.get("HOSTNAME", "reviews-" + VERSION)

REVIEWS = [
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."),
]


def ratings_for(pid, headers):
    try:
        status, body = get_json("{}/ratings/{}".format(service_url("ratings"), pid), headers,
                                RATINGS_TIMEOUT_S)
    except OSError:
        return None
    if status == 200 and body:
        return body.get("ratings")
    return None


def reviews(h, rest):
    try:
        pid = int(rest)
    except ValueError:
        return h.send_json(400, {"error": "please provide numeric product id"})
    out = {"id": str(pid), "podname": PODNAME, "clustername": "null", "reviews": []}
    stars = ratings_for(pid, forward_headers(h.headers)) if STARS else None
    for reviewer, text in REVIEWS:
        review = {"reviewer": reviewer, "text": text}
        if STARS:
            if stars is None:
                review["rating"] = {"error": "Ratings service is currently unavailable"}
            else:
                review["rating"] = {"stars": stars.get(reviewer, 0), "color": COLOR}
        out["reviews"].append(review)
    return h.send_json(200, out)


serve({"/health": lambda h, r: h.send_json(200, {"status": "Reviews is healthy"}),
       "/reviews": reviews})
