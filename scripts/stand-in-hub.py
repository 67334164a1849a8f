#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub, for running scripts/check-real-models.sh (and anything
else that downloads models) without network: serves the files under ROOT/OWNER/NAME/PATH as
model repositories, the way the hub answers `huggingface_hub` and tercuman's client:

  HEAD/GET /OWNER/NAME/resolve/REVISION/PATH  -> 302 to /cdn/SHA256, with X-Repo-Commit,
      X-Linked-Etag (the file's sha256, as the hub gives for LFS files), X-Linked-Size;
      404 with X-Error-Code RepoNotFound / EntryNotFound for what is not there
  GET /cdn/SHA256                             -> the bytes, honouring `Range: bytes=N-`

Every repository is at one commit (the sha1 of its name, so that runs are repeatable), reached
by `main` or by that sha. Prints the endpoint URL on its first line of stdout, then serves until
killed:

    python3 scripts/stand-in-hub.py ROOT [--port 0]
    HF_ENDPOINT=http://127.0.0.1:PORT tercuman models fetch hf:OWNER/NAME/FILE.gguf

Standard library only.
"""
import argparse
import hashlib
import http.server
import pathlib
import sys
import threading


def commit_of(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


class Files:
    """The files under ROOT, by repo and path, and by sha256 for the CDN."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.by_sha: dict[str, pathlib.Path] = {}
        self.lock = threading.Lock()

    def sha256(self, path: pathlib.Path) -> str:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        with self.lock:
            self.by_sha[digest] = path
        return digest


class Handler(http.server.BaseHTTPRequestHandler):
    files: Files

    def log_message(self, fmt, *args):  # quiet: the caller's output is what matters
        pass

    def do_HEAD(self):
        self.route(head=True)

    def do_GET(self):
        self.route(head=False)

    def reply(self, status: int, headers: dict, head: bool, body: bytes = b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def route(self, head: bool):
        parts = self.path.split("?")[0].lstrip("/").split("/", 4)
        if len(parts) == 2 and parts[0] == "cdn":
            return self.cdn(parts[1], head)
        if len(parts) != 5 or parts[2] != "resolve":
            return self.reply(404, {}, head, b"not a resolve URL")
        owner, name, _, revision, rel = parts
        repo = f"{owner}/{name}"
        repo_dir = self.files.root / owner / name
        if not repo_dir.is_dir():
            return self.reply(401, {"X-Error-Code": "RepoNotFound"}, head)
        if revision not in ("main", commit_of(repo)):
            return self.reply(404, {"X-Error-Code": "RevisionNotFound"}, head)
        path = repo_dir / rel
        if ".." in pathlib.PurePosixPath(rel).parts or not path.is_file():
            return self.reply(404, {"X-Error-Code": "EntryNotFound"}, head)
        sha = self.files.sha256(path)
        host = self.headers.get("Host", f"127.0.0.1:{self.server.server_port}")
        self.reply(302, {
            "X-Repo-Commit": commit_of(repo),
            "X-Linked-Etag": f'"{sha}"',
            "X-Linked-Size": str(path.stat().st_size),
            "ETag": f'"{sha}"',
            "Location": f"http://{host}/cdn/{sha}",
        }, head)

    def cdn(self, sha: str, head: bool):
        with self.files.lock:
            path = self.files.by_sha.get(sha)
        if path is None:
            return self.reply(404, {}, head)
        size = path.stat().st_size
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
        if start > size:
            return self.reply(416, {"Content-Range": f"bytes */{size}"}, head)
        status = 206 if start else 200
        headers = {"Content-Length": str(size - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        self.reply(status, headers, True)
        if not head:
            with path.open("rb") as f:
                f.seek(start)
                while chunk := f.read(1 << 20):
                    self.wfile.write(chunk)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=pathlib.Path, help="ROOT/OWNER/NAME/PATH are served")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    args = ap.parse_args()
    Handler.files = Files(args.root.resolve())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
