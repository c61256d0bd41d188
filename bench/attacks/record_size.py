#!/usr/bin/env python3
"""Issue 15, item 6: 400 contacts of 0.9 MB each into one location, against the byte bound.

Usage: ghl-mock serve --port PORT --no-rate-limits &   then
       python3 bench/attacks/record_size.py PORT PID PIT   (the PIT the banner printed)
"""
import json, sys, urllib.request, subprocess, time
port=int(sys.argv[1]); pid=int(sys.argv[2]); token=sys.argv[3]
def rss(): 
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])//1024
start=rss(); codes={}
big="x"*900_000
for i in range(400):
    body=json.dumps({"locationId":"ghlMockLocationA0001","firstName":"Big","email":f"big{i}@example.com","companyName":big}).encode()
    r=urllib.request.Request(f"http://127.0.0.1:{port}/contacts/",data=body,method="POST")
    r.add_header("Authorization","Bearer "+token); r.add_header("Version","2021-07-28"); r.add_header("Content-Type","application/json")
    try:
        with urllib.request.urlopen(r) as a: code=a.status
    except urllib.error.HTTPError as e:
        code=e.code; last=e.read()[:200]
    codes[code]=codes.get(code,0)+1
print(f"RSS {start} MiB -> {rss()} MiB; answers {codes}; last refusal {last if 'last' in dir() else ''}")
