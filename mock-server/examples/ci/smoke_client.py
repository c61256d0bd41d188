#!/usr/bin/env python3
"""A stand-in for an integration's own tests: lists, creates and reads back a
contact through GHL_BASE_URL with GHL_PIT_CI_TOKEN, as a well-behaved client
(Version on every call, no retries). Exits 1 on any unexpected answer."""
import json
import os
import sys
import urllib.request

BASE = os.environ["GHL_BASE_URL"]
TOKEN = os.environ["GHL_PIT_CI_TOKEN"]
LOCATION = "ciLocationA000000001"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + TOKEN)
    request.add_header("Version", "2021-07-28")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


status, listed = call("GET", "/contacts/?locationId=" + LOCATION)
assert status == 200 and isinstance(listed.get("contacts"), list), (status, listed)
status, created = call("POST", "/contacts/", {"locationId": LOCATION, "firstName": "Ada", "email": "ada@ci.example"})
assert status == 201, (status, created)
contact = created["contact"]["id"]
status, read = call("GET", "/contacts/" + contact)
assert status == 200 and read["contact"]["email"] == "ada@ci.example", (status, read)
print("smoke client: list, create and read back passed")
sys.exit(0)
