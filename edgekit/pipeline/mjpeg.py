"""A small MJPEG-over-HTTP server (the viewer sink; also the test's stand-in for an IP camera).

Serves `/` (an HTML page: the live stream and the pipeline's per-node statistics, refreshed every second),
`/stream.mjpg` (multipart/x-mixed-replace JPEGs), `/frame.jpg` and `/stats.json`. `close()` stops the server
and joins every connection thread.

With a `token`, every request must carry `?token=...` (403 otherwise). At most `max_clients` connections are
served at once; more are answered 503 and closed. A client that disconnects or stops reading for `timeout`
seconds is dropped quietly (no traceback)."""
from __future__ import annotations

import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BOUNDARY = "edgekitframe"

PAGE = ("""<!doctype html><html><head><meta charset="utf-8"><title>{title} - edgekit</title>
<style>body{{font-family:sans-serif;background:#111;color:#ddd;margin:1em}}img{{max-width:100%;border:1px solid #444}}
table{{border-collapse:collapse;margin-top:1em}}td,th{{padding:2px 10px;text-align:right}}th{{color:#9cf}}</style>
</head><body><h3>edgekit pipeline: {title}</h3><img src="/stream.mjpg{query}" alt="live stream">
<div id="summary"></div><table id="nodes"></table>
<script>
async function tick(){{try{{const s=await (await fetch('/stats.json{query}')).json();
const f=v=>v==null?'-':v.toFixed(1);
document.getElementById('summary').textContent=`${{s.frames_in}} frames in, ${{s.frames_processed}} processed, `+
 `${{s.frames_dropped}} dropped, ${{f(s.fps)}} frames/s, end-to-end median ${{f(s.e2e_latency_ms_median)}} ms`;
let h='<tr><th>node</th><th>kind</th><th>in</th><th>out</th><th>dropped</th>"""
        """<th>rate/s</th><th>median ms</th><th>p90 ms</th></tr>';
for(const n of s.nodes||[])h+=`<tr><td>${{n.node}}</td><td>${{n.kind}}</td><td>${{n.in}}</td><td>${{n.out}}</td>`+
 `<td>${{n.dropped}}</td><td>${{f(n.rate_fps)}}</td><td>${{f(n.latency_ms_median)}}</td><td>${{f(n.latency_ms_p90)}}</td></tr>`;
document.getElementById('nodes').innerHTML=h;}}catch(e){{}}}}
setInterval(tick,1000);tick();
</script></body></html>""")


class MjpegServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8080, stats=None, title: str = "edgekit",
                 token: str | None = None, max_clients: int = 8, timeout: float = 2.0):
        self.token = token
        self.max_clients = max_clients
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self.refused = 0  # connections answered 503 (too many clients)
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closing = threading.Event()
        self.stats = stats or (lambda: {})
        self.title = title
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except OSError:  # the client went away or stalled: drop it
                    self.close_connection = True

            def do_GET(self):
                url = urlsplit(self.path)
                path = url.path
                if server_self.token is not None and not hmac.compare_digest(
                        (parse_qs(url.query).get("token") or [""])[0].encode(), server_self.token.encode()):
                    self._send(403, "text/plain", b"forbidden: open the URL with ?token=... that the pipeline "
                                                  b"printed\n")
                elif path in ("/", "/index.html"):
                    query = f"?token={server_self.token}" if server_self.token else ""
                    body = PAGE.format(title=server_self.title, query=query).encode()
                    self._send(200, "text/html; charset=utf-8", body)
                elif path == "/stats.json":
                    self._send(200, "application/json", json.dumps(server_self.stats(), default=str).encode())
                elif path == "/frame.jpg":
                    jpeg = server_self.latest(timeout=5.0)
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif path in ("/stream.mjpg", "/stream", "/video"):
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self):
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                last = -1
                try:
                    while not server_self._closing.is_set():
                        jpeg, seq = server_self.next_frame(last, timeout=0.5)
                        if jpeg is None:
                            continue
                        last = seq
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # close() joins the connection threads
            block_on_close = True
            allow_reuse_address = True
            request_queue_size = 128  # a burst of connections is accepted (and answered or refused), not stalled

            def process_request(self, request, client_address):
                request.settimeout(timeout)  # a client that stalls is dropped after `timeout` seconds
                with server_self._clients_lock:
                    full = len(server_self._clients) >= server_self.max_clients
                    if not full:
                        server_self._clients.add(request)
                if full:
                    server_self.refused += 1
                    try:
                        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                        b"Retry-After: 5\r\nContent-Length: 17\r\n\r\ntoo many clients\n")
                    except OSError:
                        pass
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def shutdown_request(self, request):
                with server_self._clients_lock:
                    server_self._clients.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request, client_address):  # never a traceback for a client's doing
                pass

        self._httpd = Server((host, port), Handler)
        self._httpd.timeout = 0.5
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"edgekit-mjpeg-{self.port}", daemon=True)
        self._thread.start()

    @property
    def clients(self) -> int:
        """Connections being served now."""
        with self._clients_lock:
            return len(self._clients)

    def publish(self, frame_bgr, quality: int = 80) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if ok:
            self.publish_jpeg(buf.tobytes())

    def publish_jpeg(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg = jpeg
            self._seq += 1
            self._cond.notify_all()

    def latest(self, timeout: float = 0.0):
        with self._cond:
            if self._jpeg is None and timeout:
                self._cond.wait_for(lambda: self._jpeg is not None or self._closing.is_set(), timeout)
            return self._jpeg

    def next_frame(self, after: int, timeout: float):
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closing.is_set(), timeout)
            if self._seq > after and self._jpeg is not None:
                return self._jpeg, self._seq
            return None, after

    def close(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        with self._clients_lock:  # wake handlers blocked writing to a client that does not read
            for sock in list(self._clients):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._httpd.server_close()  # joins the connection threads (they see _closing within 0.5 s)
        self._thread.join(5.0)
