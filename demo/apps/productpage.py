#!/usr/bin/python3
"""bookinfo productpage (Istio's sample, in Python): calls details and reviews with a 3 s
timeout and one retry (the sample's deliberate bug for the fault-injection task), forwards
the tracing headers and `end-user` (the logged-in user: cookie `user`, as the sample's
session, or an `end-user` request header)."""
import html
import json

from common import forward_headers, get_json, serve, service_url

PRODUCT = {"id": 0, "title": "The Comedy of Errors",
           "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>"}


def headers_of(h):
    out = forward_headers(h.headers)
    for part in (h.headers.get("cookie") or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == "user" and v:
            out["end-user"] = v
    return out


def call_twice(url, headers):
    """The sample's loop: two tries, 3 s each; (status, body or None)."""
    res = None
    for _ in range(2):
        try:
            res = get_json(url, headers, 3.0)
        except OSError:
            res = None
        if res and res[0] == 200:
            return res
    return (res[0] if res else 500), None


def product_details(pid, headers):
    status, body = call_twice("{}/details/{}".format(service_url("details"), pid), headers)
    if body is None:
        return status, {"error": "Sorry, product details are currently unavailable for this book."}
    return 200, body


def product_reviews(pid, headers):
    status, body = call_twice("{}/reviews/{}".format(service_url("reviews"), pid), headers)
    if body is None:
        return status, {"error": "Sorry, product reviews are currently unavailable for this book."}
    return 200, body


def render_reviews(reviews):
    if "error" in reviews:
        return "<h3>Error fetching product reviews!</h3>\n<p>{}</p>\n".format(html.escape(reviews["error"]))
    lines = []
    for r in reviews.get("reviews", []):
        lines.append("<blockquote><p>{}</p><small>{}</small>".format(html.escape(r["text"]), r["reviewer"]))
        rating = r.get("rating")
        if rating and "stars" in rating:
            lines.append('<font color="{0}">{1}</font> <span class="stars" data-color="{0}">{2}</span>'.format(
                rating["color"], "&#9733;" * rating["stars"] + "&#9734;" * (5 - rating["stars"]), rating["stars"]))
        elif rating:
            lines.append("<p><i>{}</i></p>".format(html.escape(rating["error"])))
        lines.append("</blockquote>")
    lines.append("<dl><dt>Reviews served by:</dt><dd><u>{}</u></dd></dl>".format(
        html.escape(reviews.get("podname", "?"))))
    return "\n".join(lines) + "\n"


def productpage(h, rest):
    headers = headers_of(h)
    _, details = product_details(PRODUCT["id"], headers)
    _, reviews = product_reviews(PRODUCT["id"], headers)
    user = headers.get("end-user", "")
    body = ["<!DOCTYPE html><html><head><title>Simple Bookstore App</title></head><body>",
            "<h1>{}</h1>".format(PRODUCT["title"]),
            "<p>{}</p>".format("Welcome, " + html.escape(user) if user else "Sign in"),
            "<h4>Book Details</h4>"]
    if "error" in details:
        body.append("<h3>Error fetching product details!</h3><p>{}</p>".format(details["error"]))
    else:
        body.append("<dl>" + "".join("<dt>{}:</dt><dd>{}</dd>".format(k, html.escape(str(v)))
                                     for k, v in details.items() if k != "id") + "</dl>")
    body.append("<h4>Book Reviews</h4>")
    body.append(render_reviews(reviews))
    body.append("</body></html>\n")
    return 200, "text/html; charset=utf-8", "\n".join(body)


def api_reviews(h, rest):
    status, body = product_reviews(rest, headers_of(h))
    return status, "application/json", json.dumps(body)


def api_details(h, rest):
    status, body = product_details(rest, headers_of(h))
    return status, "application/json", json.dumps(body)


serve({"/health": lambda h, r: (200, "application/json", json.dumps({"status": "Product page is healthy"})),
       "/productpage": productpage,
       "/api/v1/products/0/reviews": lambda h, r: api_reviews(h, "0"),
       "/api/v1/products/0/details": lambda h, r: api_details(h, "0")})
