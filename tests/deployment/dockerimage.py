"""A small container image for the custom-image tests, built without any registry.

`test_image(docker)` returns the tag of an image made with `docker import` from a root file
system assembled here: this host's Python interpreter (`sys.executable`'s real file, its standard
library without the test suites, its extension modules and every shared library `ldd` lists for
them), `/bin/sh` for EXEC health checks and `docker exec`, an `/etc/passwd` with ModelArts'
`ma-user` (uid 1000, gid 100), and `SERVER` below as the image's command. The tag carries a hash
of everything that goes in, so a second test session reuses the image and a change rebuilds it.
Building takes a few seconds (no package manager, no network).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

IMAGE_REPO = "atelier-test/echo-server"
# Parts of the standard library the server never imports (they make the image three times larger).
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils",
               "site-packages", "dist-packages", "unittest", "config-3.11-x86_64-linux-gnu"}

# The image's server (stdlib only), run as `python3 /opt/server.py`. It listens on $PORT when the
# run gives one (host network mode), else on ModelArts' 8080, and reads the model package that
# Atelier mounts at /home/mind/model:
#   GET  /health   {"health": "true"}; 500 while /tmp/unhealthy exists (a switch for HTTP checks)
#   POST /         {"echo": <body>, "uid", "gid", "model_files", "model_greeting", "env"};
#                  with `Accept: text/event-stream` three events {"index", "echo"}, one per 0.2 s
#   GET (Upgrade)  WebSocket (RFC 6455) on any path: echoes each text frame as "echo: <text>"
# With TEST_TLS_CERT and TEST_TLS_KEY (PEM files, e.g. in the model folder) it serves HTTPS instead.
SERVER = r'''
import base64, hashlib, http.server, json, os, struct, sys, time

MODEL_DIR = "/home/mind/model"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def model_files():
    found = []
    for root, _dirs, files in os.walk(MODEL_DIR):
        found += [os.path.relpath(os.path.join(root, name), MODEL_DIR) for name in files]
    return sorted(found)


def greeting():
    try:
        with open(os.path.join(MODEL_DIR, "greeting.txt")) as handle:
            return handle.read().strip()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            if os.path.exists("/tmp/unhealthy"):
                return self.answer(500, {"health": "false"})
            return self.answer(200, {"health": "true"})
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        return self.answer(404, {"error": "not found", "path": self.path})

    def stream(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for index in range(3):
            self.wfile.write(f"data: {json.dumps({'index': index, 'echo': data})}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.2)
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            return self.answer(400, {"error_msg": "the body is not JSON"})
        if "text/event-stream" in self.headers.get("Accept", ""):
            return self.stream(data)
        self.answer(200, {"echo": data, "uid": os.getuid(), "gid": os.getgid(), "model_files": model_files(),
                          "model_greeting": greeting(),
                          "env": {k: v for k, v in os.environ.items() if k.startswith(("MODEL_", "TEST_"))}})

    def websocket(self):
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:  # close: answer it and end
                self.frame(8, payload[:2])
                return
            if opcode == 9:  # ping
                self.frame(10, payload)
            elif opcode == 1:
                self.frame(1, b"echo: " + payload)

    def frame(self, opcode, payload):
        size = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([size]) if size < 126 else bytes([126]) + struct.pack(">H", size))
        self.wfile.write(head + payload)
        self.wfile.flush()

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


class Server(http.server.ThreadingHTTPServer):
    tls = None

    def get_request(self):
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake happens on the first read, in the request's thread
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        print(f"connection from {client_address[0]} failed: {sys.exc_info()[1]}", flush=True)


port = int(os.environ.get("PORT") or 8080)
server = Server(("0.0.0.0", port), Handler)
if os.environ.get("TEST_TLS_CERT"):
    import ssl

    server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls.load_cert_chain(os.environ["TEST_TLS_CERT"], os.environ["TEST_TLS_KEY"])
scheme = "https" if server.tls else "http"
print(f"echo server: uid {os.getuid()} gid {os.getgid()} listening on {port} ({scheme})", flush=True)
server.serve_forever()
'''

PASSWD = "root:x:0:0:root:/root:/bin/sh\nma-user:x:1000:100:ma-user:/home/ma-user:/bin/sh\n"
GROUP = "root:x:0:\nusers:x:100:\n"


def _libraries(binaries: list[Path]) -> set[Path]:
    """The shared libraries (and the loader) the binaries need, as ldd resolves them here."""
    found: set[Path] = set()
    for binary in binaries:
        done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
        for match in re.finditer(r"(/\S+) \(0x", done.stdout):
            found.add(Path(match.group(1)))
    return found


def _rootfs_files() -> tuple[Path, Path, list[tuple[Path, str]]]:
    """(interpreter, stdlib dir, [(host file, path in the image)]) of the image's file system."""
    python = Path(os.path.realpath(sys.executable))
    if os.path.realpath(sys.prefix) != os.path.realpath(sys.base_prefix):  # a virtualenv: use its base
        python = Path(os.path.realpath(Path(sys.base_prefix) / "bin" / python.name))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files: list[tuple[Path, str]] = [(python, str(python))]
    sh = Path(os.path.realpath("/bin/sh"))
    files.append((sh, str(sh)))
    for path in sorted(stdlib.rglob("*")):
        rel = path.relative_to(stdlib)
        if rel.parts[0] in STDLIB_SKIP or not path.is_file() or path.is_symlink():
            continue
        files.append((path, str(path)))
    binaries = [python, sh, *(p for p, _ in files if p.suffix == ".so")]
    for lib in sorted(_libraries(binaries)):
        real = Path(os.path.realpath(lib))
        files.append((real, str(lib)))
    return python, stdlib, files


def _tarball(files: list[tuple[Path, str]], python: Path) -> bytes:
    buffer = io.BytesIO()

    def add_bytes(tar, name, data: bytes, mode=0o644, uid=0, gid=0):
        info = tarfile.TarInfo(name.lstrip("/"))
        info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
        tar.addfile(info, io.BytesIO(data))

    def add_dir(tar, name, mode=0o755, uid=0, gid=0):
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
        tar.addfile(info)

    def add_link(tar, name, target):
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type, info.linkname = tarfile.SYMTYPE, target
        tar.addfile(info)

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()
        for directory in ("/etc", "/tmp", "/opt", "/bin", "/usr", "/usr/bin", "/home", "/home/mind", "/home/ma-user",
                          "/root", "/proc", "/sys", "/dev"):
            owner = 1000 if directory.startswith(("/home/mind", "/home/ma-user")) else 0
            add_dir(tar, directory, mode=0o1777 if directory == "/tmp" else 0o755, uid=owner, gid=100 if owner else 0)
            made.add(directory)
        for source, target in files:
            parent = os.path.dirname(target)
            missing = []
            while parent not in made and parent != "/":
                missing.append(parent)
                parent = os.path.dirname(parent)
            for directory in reversed(missing):
                add_dir(tar, directory)
                made.add(directory)
            if target in made:
                continue
            made.add(target)
            tar.add(str(source), arcname=target.lstrip("/"), recursive=False,
                    filter=lambda info: _root_owned(info))
        if "/bin/sh" not in made:
            add_link(tar, "/bin/sh", str(Path(os.path.realpath("/bin/sh"))))
        add_link(tar, "/usr/bin/python3", str(python))
        add_bytes(tar, "/etc/passwd", PASSWD.encode())
        add_bytes(tar, "/etc/group", GROUP.encode())
        add_bytes(tar, "/opt/server.py", SERVER.encode())
    return buffer.getvalue()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def image_tag() -> str:
    """The tag the image gets: a hash of the server, the interpreter and this builder."""
    python = os.path.realpath(sys.executable)
    digest = hashlib.sha256(SERVER.encode() + Path(__file__).read_bytes() + python.encode()
                            + str(os.stat(python).st_size).encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:{digest}"


def test_image(docker: str) -> str:
    """Build the test image unless this exact image is already present; returns its tag."""
    tag = image_tag()
    present = subprocess.run([docker, "image", "inspect", tag], capture_output=True)
    if present.returncode == 0:
        return tag
    python, _stdlib, files = _rootfs_files()
    data = _tarball(files, python)
    done = subprocess.run([docker, "import", "--change", 'CMD ["/usr/bin/python3", "/opt/server.py"]',
                           "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", "--change", "WORKDIR /home/mind",
                           "--change", "EXPOSE 8080", "-", tag], input=data, capture_output=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"docker import of the test image failed: {done.stderr.decode(errors='replace')}")
    # Images of earlier versions of this builder are of no further use: free their space.
    listed = subprocess.run([docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO],
                            capture_output=True, text=True)
    stale = [name for name in listed.stdout.split() if name != tag]
    if stale:
        subprocess.run([docker, "image", "rm", *stale], capture_output=True)
    return tag


test_image.__test__ = False  # a helper, not a pytest test
