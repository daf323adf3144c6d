"""A minimal RTSP 1.0 server for the tests: an IP camera stand-in on 127.0.0.1 that serves BGR frames as
Motion-JPEG over RTP (RFC 2435, payload type 26), interleaved in the RTSP TCP connection
(`Transport: RTP/AVP/TCP;interleaved=0-1`). Pure Python (socket + threading); frames are encoded with OpenCV.

    with RtspServer(frames, fps=25) as server:
        cap = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG)

It handles OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER (keepalive) and TEARDOWN. A SETUP that asks for UDP is
answered `461 Unsupported Transport` (FFmpeg then retries over TCP). `stop()` closes every client connection,
so clients see the stream disappear; `start()` again binds the same port (SO_REUSEADDR). `pause()` keeps the
connections open but sends nothing (a hung camera), `resume()` goes on.

Each PLAY streams the frames in a loop at `fps`, from the first, with 90 kHz timestamps. Frame sizes must be
multiples of 16 (RTP/JPEG type 1 is 4:2:0 and gives the size in 8-pixel units)."""
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from typing import Sequence

import numpy as np

MAX_PACKET = 1400  # RTP packet size (header included)


def jpeg_to_rtp_payload(jpg: bytes) -> tuple[int, int, bytes, bytes]:
    """A baseline 4:2:0 JPEG -> (width, height, quantization tables (128 bytes: luma, chroma), scan data), the
    pieces RFC 2435 sends; the receiver rebuilds the headers (standard Huffman tables)."""
    if jpg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    tables: dict[int, bytes] = {}
    size = None
    i = 2
    while i < len(jpg):
        if jpg[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at {i}")
        marker = jpg[i + 1]
        length = struct.unpack(">H", jpg[i + 2:i + 4])[0]
        seg = jpg[i + 4:i + 2 + length]
        if marker == 0xDB:  # DQT: one or more (Pq/Tq, 64 values) tables
            j = 0
            while j < len(seg):
                pq, tq = seg[j] >> 4, seg[j] & 15
                if pq != 0:
                    raise ValueError("16-bit quantization tables are not supported")
                tables[tq] = seg[j + 1:j + 65]
                j += 65
        elif marker == 0xDD:  # DRI
            if struct.unpack(">H", seg[:2])[0]:
                raise ValueError("restart markers (DRI) would need RTP/JPEG types 64-127")
        elif marker == 0xC0:  # SOF0 (baseline)
            height, width = struct.unpack(">HH", seg[1:5])
            comps = [(seg[6 + 3 * k], seg[7 + 3 * k], seg[8 + 3 * k]) for k in range(seg[5])]
            if [(c[1], c[2]) for c in comps] != [(0x22, 0), (0x11, 1), (0x11, 1)]:
                raise ValueError(f"not a 4:2:0 YCbCr JPEG with tables 0/1/1: {comps}")
            size = (width, height)
        elif marker in (0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
            raise ValueError("only baseline JPEG (SOF0) can be sent")
        elif marker == 0xDA:  # SOS: the entropy-coded data follows, up to EOI (the receiver adds EOI back)
            scan = jpg[i + 2 + length:]
            if scan.endswith(b"\xff\xd9"):
                scan = scan[:-2]
            if size is None or set(tables) != {0, 1}:
                raise ValueError("JPEG without SOF0 or without two quantization tables")
            if size[0] % 16 or size[1] % 16 or size[0] > 2040 or size[1] > 2040:
                raise ValueError(f"frame size {size} must be multiples of 16, at most 2040")
            return size[0], size[1], tables[0] + tables[1], scan
        i += 2 + length
    raise ValueError("JPEG without a scan")


def encode_frame(frame: np.ndarray, quality: int = 90) -> tuple[int, int, bytes, bytes]:
    import cv2

    ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                           cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
                                           cv2.IMWRITE_JPEG_OPTIMIZE, 0, cv2.IMWRITE_JPEG_PROGRESSIVE, 0,
                                           cv2.IMWRITE_JPEG_RST_INTERVAL, 0])
    if not ok:
        raise ValueError("cv2.imencode failed")
    return jpeg_to_rtp_payload(jpg.tobytes())


def rtp_jpeg_packets(width: int, height: int, qtables: bytes, scan: bytes, max_packet: int = MAX_PACKET):
    """The RTP payloads (without RTP headers) of one frame: 8-byte JPEG header (type 1, Q 255), the quantization
    table header on the first fragment, the scan data cut at `fragment offset`s."""
    out, offset = [], 0
    room = max_packet - 12 - 8
    while offset < len(scan) or not out:
        header = struct.pack(">B3sBBBB", 0, offset.to_bytes(3, "big"), 1, 255, width // 8, height // 8)
        if offset == 0:
            header += struct.pack(">BBH", 0, 0, len(qtables)) + qtables
        chunk = scan[offset:offset + room - (len(header) - 8)]
        out.append(header + chunk)
        offset += len(chunk)
    return out


class _Client:
    def __init__(self, server: "RtspServer", sock: socket.socket, addr):
        self.server, self.sock, self.addr = server, sock, addr
        self.send_lock = threading.Lock()
        self.playing = threading.Event()
        self.closed = threading.Event()
        self.session = f"{random.getrandbits(32):08X}"
        self.channel = 0
        self.seq = random.getrandbits(16)
        self.ts0 = random.getrandbits(32)
        self.ssrc = random.getrandbits(32)
        self.thread = threading.Thread(target=self._serve, name=f"rtsp-client-{addr[1]}", daemon=True)
        self.streamer: threading.Thread | None = None

    # ---- the RTSP conversation
    def _serve(self) -> None:
        buf = b""
        try:
            while not self.closed.is_set():
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while buf:
                    if buf[:1] == b"$":  # interleaved data from the client (RTCP receiver reports): skip it
                        if len(buf) < 4:
                            break
                        n = struct.unpack(">H", buf[2:4])[0]
                        if len(buf) < 4 + n:
                            break
                        buf = buf[4 + n:]
                        continue
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buf[:end].decode("latin-1").split("\r\n")
                    headers = {}
                    for line in head[1:]:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    body_len = int(headers.get("content-length", 0))
                    if len(buf) < end + 4 + body_len:
                        break
                    buf = buf[end + 4 + body_len:]
                    if not self._request(head[0], headers):
                        return
        except OSError:
            pass
        finally:
            self.close()

    def _reply(self, cseq: str, status: str = "200 OK", headers: dict | None = None, body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", "Server: edgekit-test-rtsp"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _request(self, line: str, headers: dict) -> bool:
        method, url = (line.split() + ["", ""])[:2]
        cseq = headers.get("cseq", "0")
        self.server.requests.append((method, url, headers))
        session = {"Session": f"{self.session};timeout=60"}
        if method == "OPTIONS":
            self._reply(cseq, headers={"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"})
        elif method == "DESCRIBE":
            if not url.rstrip("/").endswith("/" + self.server.path):
                self._reply(cseq, "404 Not Found")
                return True
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=edgekit test camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                   "a=control:*\r\nm=video 0 RTP/AVP 26\r\na=control:track0\r\n"
                   f"a=framerate:{self.server.fps:g}\r\n").encode()
            self._reply(cseq, headers={"Content-Base": self.server.url + "/", "Content-Type": "application/sdp"},
                        body=sdp)
        elif method == "SETUP":
            transport = headers.get("transport", "")
            if "RTP/AVP/TCP" not in transport.upper():
                self._reply(cseq, "461 Unsupported Transport")
                return True
            for part in transport.split(";"):
                if part.strip().startswith("interleaved="):
                    self.channel = int(part.split("=")[1].split("-")[0])
            self._reply(cseq, headers={"Transport": f"RTP/AVP/TCP;unicast;interleaved={self.channel}-"
                                                    f"{self.channel + 1}", **session})
        elif method == "PLAY":
            self._reply(cseq, headers={"Range": "npt=0.000-", **session,
                                       "RTP-Info": f"url={self.server.url}/track0;seq={self.seq};rtptime={self.ts0}"})
            if self.streamer is None:
                self.streamer = threading.Thread(target=self._stream, name=f"rtsp-stream-{self.addr[1]}", daemon=True)
                self.streamer.start()
        elif method == "GET_PARAMETER":
            self._reply(cseq, headers=session)
        elif method == "TEARDOWN":
            self._reply(cseq, headers=session)
            return False
        else:
            self._reply(cseq, "501 Not Implemented")
        return True

    # ---- RTP
    def _stream(self) -> None:
        server = self.server
        period = 1.0 / server.fps
        start = time.monotonic()
        i = 0
        try:
            while not self.closed.is_set():
                if server.paused.is_set():  # a hung camera: the connection stays open, nothing comes
                    self.closed.wait(0.05)
                    start = time.monotonic() - i * period  # go on from now when resumed
                    continue
                ts = (self.ts0 + round(i * 90000 / server.fps)) & 0xFFFFFFFF
                payloads = server.payloads[i % len(server.payloads)]
                for k, payload in enumerate(payloads):
                    marker = 0x80 if k == len(payloads) - 1 else 0
                    rtp = struct.pack(">BBHII", 0x80, marker | 26, self.seq, ts, self.ssrc) + payload
                    self.seq = (self.seq + 1) & 0xFFFF
                    self._send(struct.pack(">BBH", 0x24, self.channel, len(rtp)) + rtp)
                server.frames_sent += 1
                i += 1
                self.closed.wait(max(0.0, start + i * period - time.monotonic()))
        except OSError:
            self.close()

    def _send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def join(self, timeout: float) -> None:
        for t in (self.thread, self.streamer):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)


class RtspServer:
    """Serves `frames` (BGR uint8 arrays, sizes multiples of 16) in a loop at `fps` on rtsp://127.0.0.1:PORT/live.
    `port=0` picks a free port at the first start(); later start()s reuse it."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 25.0, port: int = 0, path: str = "live",
                 quality: int = 90):
        if not len(frames):
            raise ValueError("no frames to serve")
        self.fps, self.port, self.path = float(fps), int(port), path
        self.payloads = [rtp_jpeg_packets(*encode_frame(f, quality)) for f in frames]
        self.requests: list[tuple[str, str, dict]] = []  # (method, url, headers) of every request, for tests
        self.connections = 0
        self.frames_sent = 0
        self._sock: socket.socket | None = None
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.paused = threading.Event()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    def start(self) -> "RtspServer":
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(8)
        sock.settimeout(0.1)  # the accept loop looks at the stop flag this often
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, args=(sock,), name=f"rtsp-server-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def _accept(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(self, conn, addr)
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    break
                self._clients.append(client)
                self.connections += 1
            client.thread.start()

    def stop(self) -> None:
        """Stops listening and closes every client connection (the camera goes away)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()
        for c in clients:
            c.join(5)

    def pause(self) -> None:
        """Stops sending frames but keeps every connection open (a camera that hangs): clients must time out."""
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
