#!/usr/bin/env python3
"""Issue 15, item 1: silent connections kept at the cap; do good clients get served?

Usage: ghl-mock serve --port PORT --max-connections 768 --frozen-clock &
       python3 bench/attacks/idle_connections.py PORT 800 300
(800 silent sockets first, an attacker reopening more at ~1,000/s, then 300
good clients one after the other, each on a new connection; raise `ulimit -n`.)
"""
import socket, sys, time, threading
port=int(sys.argv[1]); n_idle=int(sys.argv[2]); goods=int(sys.argv[3])
stop=False
socks=[]
def attacker():
    # keep the cap full: open silent sockets at ~1000/s, keep them open
    while not stop:
        try:
            s=socket.create_connection(("127.0.0.1",port),timeout=1)
            s.send(b"GET /contacts/ HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
            if len(socks)>4*n_idle:
                socks.pop(0).close()
        except Exception:
            pass
        time.sleep(0.001)
for _ in range(n_idle):
    s=socket.create_connection(("127.0.0.1",port)); s.send(b"GET /x HTTP/1.1\r\n"); socks.append(s)
t=threading.Thread(target=attacker,daemon=True); t.start()
ok=0; fail=0; lat=[]
req=b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
for i in range(goods):
    t0=time.time()
    try:
        s=socket.create_connection(("127.0.0.1",port),timeout=5); s.settimeout(5)
        s.sendall(req); data=b""
        while True:
            b=s.recv(4096)
            if not b: break
            data+=b
        s.close()
        if data.startswith(b"HTTP/1.1 200"): ok+=1; lat.append(time.time()-t0)
        else: fail+=1
    except Exception as e:
        fail+=1
stop=True
lat.sort()
print(f"good clients: {ok} served, {fail} refused or reset; p50 {lat[len(lat)//2]*1000 if lat else 0:.1f} ms, p99 {lat[int(len(lat)*0.99)-1]*1000 if lat else 0:.1f} ms; attacker sockets opened {len(socks)}")
