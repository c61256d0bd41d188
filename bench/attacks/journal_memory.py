#!/usr/bin/env python3
"""Issue 15, item 5: the journal under 10,000 requests with 60 KB paths, then one listing of them all.

Usage: ghl-mock serve --port PORT &   then   python3 bench/attacks/journal_memory.py PORT PID
(prints RSS and its peak, from /proc/PID/status, after each step)
"""
import sys, socket, time, urllib.request
port=int(sys.argv[1]); pid=int(sys.argv[2])
def mem():
    d={}
    for l in open(f"/proc/{pid}/status"):
        if l.startswith(("VmRSS","VmHWM")): k,v=l.split(":"); d[k]=int(v.split()[0])//1024
    return d
print("start", mem())
path="/nothing/"+"x"*60000
s=socket.create_connection(("127.0.0.1",port))
req=f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
for i in range(10000):
    s.sendall(req)
    buf=b""
    while b"\r\n\r\n" not in buf: buf+=s.recv(65536)
    head,_,rest=buf.partition(b"\r\n\r\n")
    n=int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(rest)<n: rest+=s.recv(65536)
print("after 10,000 requests", mem())
t=time.time(); body=urllib.request.urlopen(f"http://127.0.0.1:{port}/__admin/journal?limit=10000").read()
print(f"journal answer {len(body)//1024} KiB in {time.time()-t:.2f}s", mem())
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/__admin/journal", method="DELETE")).read()
print("after clearing", mem())
