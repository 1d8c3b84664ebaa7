#!/usr/bin/env python3
"""`make bench`: gatehouse against the limits of the machine it runs on.

Builds the release binary and the bench examples, starts gatehouse on
temporary data directories, drives it with wrk, and prints one table in
which every speed figure is a ratio against a reference measured in this
same run (see docs/performance.md for the method and what limits each
figure). Finally writes the table into docs/performance.md, between the
`bench:begin` / `bench:end` markers.

Environment:
  BENCH_NO_BUILD=1     use the binaries already in target/release
  BENCH_NO_DOC=1       do not write docs/performance.md
  BENCH_BIG_USERS=N    users in the P5 "large" store (default 1000000)
  BENCH_KEEP=1         keep the temporary data directories
  BENCH_ROUNDS=N       rounds of each interleaved speed measurement (default 2)
  BENCH_NO_POSTGRES=1  skip the PostgreSQL rows (the P*-pg and R rows)

The PostgreSQL rows run on a throw-away cluster (scripts/test-postgres
--durable: PostgreSQL's own durability settings, fsync on) on this machine,
so they show the backend's CPU cost and its round trips, not a network's.
"""

import base64
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
GATEHOUSE = os.path.join(RELEASE, "gatehouse")
EXAMPLES = os.path.join(RELEASE, "examples")
DOC = os.path.join(ROOT, "docs", "performance.md")
NGINX = "/usr/sbin/nginx"
# The host the forward-auth figures protect (an [[access]] rule allows it).
APP_HOST = "app.bench.test"

COST = 12
PASSWORD = "bench-Password-1!"
SMALL_USERS = 1_000
BIG_USERS = int(os.environ.get("BENCH_BIG_USERS", "1000000"))
MIB = 1024 * 1024
# Speed figures alternate subject and reference this many times and keep
# the best of each: other work on a shared machine only ever slows a run.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------
# Machine and tools


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("wrk is missing: installing it with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(sudo + ["apt-get", "install", "-y", "wrk"], env=env,
                      capture_output=True).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env, check=True, capture_output=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "wrk"], env=env, check=True,
                       capture_output=True)


def ensure_nginx():
    if os.path.exists(NGINX):
        return
    log("nginx is missing: installing it with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", "nginx"],
                      env=env, capture_output=True).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env, check=True, capture_output=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", "nginx"],
                       env=env, check=True, capture_output=True)


class Nginx:
    """nginx on free ports in a temp dir with `servers` in its http block."""

    def __init__(self, workdir, servers, ports):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, sub))
        d = self.dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = (f"{user}worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
                "worker_rlimit_nofile 65536;\nevents { worker_connections 4096; }\n"
                f"http {{\n  access_log off;\n  client_body_temp_path {d}/client;\n"
                f"  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n"
                f"  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{servers}\n}}\n")
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", d, "-c", path, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        for port in ports:
            while http_status(port, "/", timeout=0.5) is None:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start; see {d}/error.log")
                time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def ensure_postgres():
    import glob
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return
    log("PostgreSQL is missing: installing it with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    pkgs = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql", "postgresql-client"]
    if subprocess.run(sudo + pkgs, env=env, capture_output=True).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env, check=True, capture_output=True)
        subprocess.run(sudo + pkgs, env=env, check=True, capture_output=True)


class PgCluster:
    """A throw-away PostgreSQL cluster with its default durability
    (scripts/test-postgres --durable)."""

    def __init__(self):
        # Not inside the (0700) work dir: the server may run as `postgres`.
        self.top = tempfile.mkdtemp(prefix="gatehouse-bench-pg-")
        os.chmod(self.top, 0o755)
        self.dir = os.path.join(self.top, "cluster")
        script = os.path.join(ROOT, "scripts", "test-postgres")
        self.script = script
        self.url = sh([script, "start", self.dir, "--durable"]).strip().splitlines()[-1]
        self.port = int(open(os.path.join(self.dir, "port")).read())

    def database(self, name, port=None):
        """The URL of database `name` (through `port` instead when given)."""
        return f"postgres://gh@127.0.0.1:{port or self.port}/{name}"

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], capture_output=True)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.top, ignore_errors=True)


class PgRoundTrips:
    """A TCP relay in front of PostgreSQL that counts the client's round
    trips: in the frontend protocol each Sync (extended query: one
    prepare, or one bind + execute) and each simple Query ends in a wait
    for the server's ReadyForQuery. What the relay costs in time is not
    measured here: only counts."""

    def __init__(self, pg_port):
        self.pg_port = pg_port
        self.count = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def read(self):
        with self.lock:
            return self.count

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        server = socket.create_connection(("127.0.0.1", self.pg_port))
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def back():
            try:
                while data := server.recv(65536):
                    client.sendall(data)
            except OSError:
                pass
            finally:
                client.close()

        threading.Thread(target=back, daemon=True).start()
        buf, untyped = b"", True
        try:
            while data := client.recv(65536):
                server.sendall(data)
                buf += data
                while True:
                    if untyped:  # StartupMessage, SSLRequest: no type byte
                        if len(buf) < 8:
                            break
                        n = int.from_bytes(buf[:4], "big")
                        if len(buf) < n:
                            break
                        code = int.from_bytes(buf[4:8], "big")
                        untyped = code in (80877103, 80877104)  # SSL/GSS request
                        buf = buf[n:]
                        continue
                    if len(buf) < 5:
                        break
                    n = int.from_bytes(buf[1:5], "big")
                    if len(buf) < 1 + n:
                        break
                    if buf[:1] in (b"S", b"Q"):
                        with self.lock:
                            self.count += 1
                    buf = buf[1 + n:]
        except OSError:
            pass
        finally:
            server.close()

    def stop(self):
        self.listener.close()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    kernel = os.uname().release
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": kernel,
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Build and seed


def build():
    if os.environ.get("BENCH_NO_BUILD"):
        return
    # Two cargo runs: the examples are built with the dev-dependencies'
    # features (hyper-util for the hello server), the server binary without.
    for cmd in (["cargo", "build", "--release", "--locked"],
                ["cargo", "build", "--release", "--locked", "--examples"]):
        log(" ".join(cmd))
        t = time.monotonic()
        subprocess.run(cmd, cwd=ROOT, check=True)
        log(f"  done in {time.monotonic() - t:.0f}s")


def seed(data_dir, users, database=None):
    """Fills `data_dir` (or, with `database`, that PostgreSQL database)."""
    out = sh([os.path.join(EXAMPLES, "bench_seed"), data_dir, str(users), PASSWORD, str(COST),
              *([database] if database else [])])
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# Servers


def http_status(port, path, timeout=1.0):
    """Status of one GET on a fresh connection, or None if not answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Connection: close\r\n\r\n".encode())
            head = s.recv(64)
            m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
            return int(m.group(1)) if m else None
    except OSError:
        return None


class Server:
    """A `gatehouse serve` on a free port; logs go to a file."""

    def __init__(self, data_dir, workdir, name, extra=(), env=None):
        self.name = name
        self.env = dict(os.environ, **env) if env else None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.data_dir = data_dir
        self.cmd = [GATEHOUSE, "--data-dir", data_dir, "serve",
                    "--listen", f"127.0.0.1:{self.port}",
                    "--bcrypt-cost", str(COST),
                    "--login-rate-per-minute", "1000000",
                    # wrk opens 64+ connections from one address.
                    "--max-connections-per-client", "4096",
                    "--metrics-listen", "off", *extra]
        self.proc = None

    def start(self, timeout=120.0):
        """Spawns and waits for the first 200 on /healthz; returns the
        seconds from spawn to that answer (the cold start)."""
        logf = open(self.log_path, "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, env=self.env)
        logf.close()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if http_status(self.port, "/healthz", timeout=0.5) == 200:
                return time.monotonic() - started
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatehouse exited ({self.proc.returncode}); see {self.log_path}")
            time.sleep(0.001)
        raise RuntimeError(f"gatehouse did not answer /healthz in {timeout}s; see {self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid


class Hello:
    def __init__(self):
        self.proc = subprocess.Popen([os.path.join(EXAMPLES, "bench_hello"), "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            raise RuntimeError(f"bench_hello said {line!r}")
        self.base = f"http://{m.group(1)}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def cookie_values(headers):
    out = {}
    for h in headers.get_all("Set-Cookie") or []:
        name, _, rest = h.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def login_form(base, user, password=PASSWORD):
    """GET /login: the CSRF cookie and the form's token for it, and the
    form body for `user` (the token stays valid for that cookie)."""
    with urllib.request.urlopen(base + "/login", timeout=10) as r:
        html = r.read().decode()
        secret = cookie_values(r.headers)["gatehouse_csrf"]
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode({"csrf": token, "id": user, "password": password,
                                   "endpoint": ""})
    return secret, body


def post_login(base, secret, body):
    """One POST /login with the form's CSRF cookie: (status, headers)."""
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(base + "/login", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"gatehouse_csrf={secret}"})
    try:
        r = opener.open(req, timeout=60)
        return r.status, r.headers
    except urllib.error.HTTPError as e:  # 303 lands here without redirects
        return e.code, e.headers


def session_status(base, cookie):
    """The status of GET /api/v1/session for a browser's cookie header."""
    try:
        with urllib.request.urlopen(urllib.request.Request(
                base + "/api/v1/session", headers={"Cookie": cookie}), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def login(base, user):
    """Logs in once; returns the cookie header of the logged-in browser."""
    secret, body = login_form(base, user)
    status, headers = post_login(base, secret, body)
    cookies = cookie_values(headers)
    if status != 303 or "gatehouse_session" not in cookies:
        raise RuntimeError(f"login as {user} answered {status}")
    cookie = f"gatehouse_session={cookies['gatehouse_session']}; gatehouse_csrf={cookies['gatehouse_csrf']}"
    status = session_status(base, cookie)
    if status != 200:
        raise RuntimeError(f"/api/v1/session answered {status}")
    return cookie


# --------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, conns, seconds, threads=2, headers=(), script=None, latency=True, pid=None):
    """One wrk run, parsed. With `pid`: also the server's CPU time per
    request (`cpu_us`), which other work on the machine disturbs far less
    than requests per second."""
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s"]
    if latency:
        cmd.append("--latency")
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    cpu0 = cpu_seconds(pid) if pid else None
    out = sh(cmd)
    r = {"raw": out}
    if pid:
        r["cpu_s"] = cpu_seconds(pid) - cpu0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}"] = to_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    r["socket_errors"] = m.group(1).strip() if m else ""
    m = re.search(r"^STATUS (.*)$", out, re.M)
    if m:
        r["status"] = dict(kv.split("=") for kv in m.group(1).split())
    if pid and r["requests"]:
        r["cpu_us"] = r["cpu_s"] * 1e6 / r["requests"]
    return r


LOGIN_LUA = """
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "gatehouse_csrf={secret}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {{}} end
function response(status, headers, body)
  local k = tostring(status)
  if status == 503 and (headers["retry-after"] or headers["Retry-After"]) then k = "503ra" end
  counts[k] = (counts[k] or 0) + 1
end
{delay}
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {{}}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  io.write("STATUS " .. table.concat(parts, " ") .. "\\n")
end
"""


def login_script(workdir, base, user, name, delay_ms=None):
    secret, body = login_form(base, user)
    delay = f"function delay() return {int(delay_ms)} end" if delay_ms else ""
    path = os.path.join(workdir, f"{name}.lua")
    with open(path, "w") as f:
        f.write(LOGIN_LUA.format(body=body, secret=secret, delay=delay))
    return path


OIDC_LUA = """
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {{}}; codes = {{}} end
local auth = "{auth_path}"
local auth_headers = {{["Cookie"] = "{cookie}"}}
local token_headers = {{["Authorization"] = "Basic {basic}",
                       ["Content-Type"] = "application/x-www-form-urlencoded"}}
local token_body = "{token_body}"
-- Each connection alternates: an authorization request (303 with a
-- code), then the code's exchange at the token endpoint (200).
function request()
  local code = table.remove(codes)
  if code then return wrk.format("POST", "/oidc/token", token_headers, token_body .. code) end
  return wrk.format("GET", auth, auth_headers)
end
function response(status, headers, body)
  local k = tostring(status)
  counts[k] = (counts[k] or 0) + 1
  if status == 303 then
    local loc = headers["Location"] or headers["location"] or ""
    local code = string.match(loc, "[?&]code=([^&]+)")
    if code then table.insert(codes, code) end
  end
end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {{}}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  io.write("STATUS " .. table.concat(parts, " ") .. "\\n")
end
"""

OIDC_CALLBACK = "http://bench.invalid/callback"
# RFC 7636 appendix B's verifier and its S256 challenge.
PKCE_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
PKCE_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def oidc_setup(server, cookie):
    """Registers a trusted app through the running server, logs the
    browser of `cookie` into it once; returns (the wrk script's fields,
    an access token)."""
    out = sh([GATEHOUSE, "--data-dir", server.data_dir, "oidc", "client", "add", "Bench",
              "--redirect-uri", OIDC_CALLBACK, "--trusted"])
    client_id = re.search(r"client id:\s+(\S+)", out).group(1)
    secret = re.search(r"client secret:\s+(\S+)", out).group(1)
    query = urllib.parse.urlencode({
        "client_id": client_id, "redirect_uri": OIDC_CALLBACK, "response_type": "code",
        "scope": "openid profile email groups", "state": "bench", "nonce": "bench",
        "code_challenge": PKCE_CHALLENGE, "code_challenge_method": "S256"})
    auth_path = "/oidc/authorize?" + query
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token_body = urllib.parse.urlencode({
        "grant_type": "authorization_code", "redirect_uri": OIDC_CALLBACK,
        "code_verifier": PKCE_VERIFIER}) + "&code="
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(urllib.request.Request(server.base + auth_path, headers={"Cookie": cookie}),
                    timeout=10)
        raise RuntimeError("the authorization request did not redirect")
    except urllib.error.HTTPError as e:
        location = e.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
    req = urllib.request.Request(server.base + "/oidc/token", data=(token_body + code).encode(),
                                 headers={"Authorization": f"Basic {basic}",
                                          "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        access = json.loads(r.read())["access_token"]
    fields = {"auth_path": auth_path, "cookie": cookie, "basic": basic, "token_body": token_body}
    return fields, access


def ok_count(r):
    """Responses that were 2xx/3xx."""
    return r["requests"] - r["non2xx"]


# --------------------------------------------------------------------------
# The figures


def cold_start(data_dir, workdir, name, runs=3, extra=()):
    times, rss = [], []
    for i in range(runs):
        s = Server(data_dir, workdir, f"{name}-start{i}", extra=extra)
        times.append(s.start())
        time.sleep(0.5)
        rss.append(rss_mib(s.pid))
        s.stop()
    return statistics.median(times), max(times), statistics.median(rss)


def login_rounds(logins, server, prefix):
    """P2's measurement: the bcrypt bound and logins on `server`,
    interleaved ROUNDS times. Returns the best bound, the best login run
    and a line for the log."""
    bounds, runs = [], []
    for i in range(ROUNDS):
        bounds.append(json.loads(sh([os.path.join(EXAMPLES, "bench_bcrypt"), str(COST),
                                     "5"]).strip()))
        runs.append(logins(server, f"user{501 + i}", f"{prefix}login{i}", 8))
    text = ("bound " + ", ".join(f"{b['per_second']:.2f}" for b in bounds)
            + " verifies/s; logins " + ", ".join(f"{r['logins']:.2f}" for r in runs) + "/s")
    return max(bounds, key=lambda b: b["per_second"]), best(runs, "logins"), text


def scale_runs(work, spawn, session, logins, sets, prefix):
    """P5's measurement on `sets` of (label, data dir, users, extra
    serve arguments): cold starts, RSS after start, then session checks
    and logins of a user in the middle of each, interleaved. Costs are the
    server's CPU per request (least disturbed by other work), the best
    round of each. The servers stay up (in "srv") for the caller."""
    cold = {label: cold_start(d, work, f"{prefix}{label}", extra=extra)
            for label, d, _, extra in sets}
    srv = {label: spawn(d, f"{prefix}p5-{label}", extra=extra) for label, d, _, extra in sets}
    time.sleep(1.0)
    rss = {label: rss_mib(s.pid) for label, s in srv.items()}
    cookies = {label: login(srv[label].base, f"user{n // 2}") for label, _, n, _ in sets}
    sess = {label: [] for label, *_ in sets}
    lgs = {label: [] for label, *_ in sets}
    for _ in range(ROUNDS):
        for label, *_ in sets:
            sess[label].append(session(srv[label], cookies[label], 64, 5))
    for i in range(ROUNDS):
        for label, _, n, _ in sets:
            lgs[label].append(logins(srv[label], f"user{n // 2 + 1 + i}",
                                     f"{prefix}login-{label}{i}", 6))
    return {
        "cold": cold, "srv": srv, "rss": rss, "sess": sess, "lgs": lgs,
        "login_ms": {label: min(r["cpu_s"] / max(int(r["status"].get("303", 0)), 1)
                                for r in lgs[label]) * 1000 for label in lgs},
        "check_us": {label: min(r["cpu_us"] for r in sess[label]) for label in sess},
    }


def fmt_ms(v):
    return "-" if v is None else (f"{v:.2f} ms" if v < 10 else f"{v:.0f} ms")


def best(runs, key="rps"):
    return max(runs, key=lambda r: r[key])


def p99_mean(runs):
    return statistics.mean(r["p99"] for r in runs)


# --------------------------------------------------------------------------
# PostgreSQL

SESSIONS_LUA = """
local cookies = {{ {cookies} }}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/api/v1/session", {{ ["Cookie"] = cookies[(i % #cookies) + 1] }})
end
"""


def pg_cpu_seconds():
    """User + system CPU time of every `postgres` process alive now."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                data = f.read()
        except OSError:
            continue
        if data[data.index("(") + 1:data.rindex(")")] == "postgres":
            fields = data.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def postgres_rows(pg, row, notes, work, spawn, retire, session, logins, redb):
    """The rows of P1, P2 and P5 on PostgreSQL, the round trips per
    request, and two replicas behind nginx (R)."""
    def data_dir(name):
        return os.path.join(work, name)

    def on(url):
        return ("--database", url)

    # ---- P1-pg: the session check, interleaved with bare hyper
    small_url = pg.database("bench_small")
    seed(data_dir("pg-small"), SMALL_USERS, small_url)
    g = spawn(data_dir("pg-small"), "pg-main", extra=on(small_url))
    cookie = login(g.base, "user500")
    hello = Hello()
    refs, runs = [], []
    try:
        wrk(hello.base + "/", 64, 1, latency=False)
        session(g, cookie, 64, 1)
        for _ in range(ROUNDS):
            refs.append(wrk(hello.base + "/", 64, 5, pid=hello.proc.pid))
            c0 = pg_cpu_seconds()
            r = session(g, cookie, 64, 5)
            r["pg_us"] = (pg_cpu_seconds() - c0) * 1e6 / max(r["requests"], 1)
            runs.append(r)
    finally:
        hello.stop()
    ref, p1 = best(refs), best(runs)
    log("P1-pg hello " + ", ".join(f"{r['rps']:.0f}" for r in refs) + " req/s; gatehouse on "
        "PostgreSQL " + ", ".join(f"{r['rps']:.0f}" for r in runs))
    row("P1-pg session check on PostgreSQL (same machine, wrk -t2 -c64)",
        f"{p1['rps']:,.0f} req/s",
        f"bare hyper hello {ref['rps']:,.0f} req/s; redb above {redb['p1']['rps']:,.0f} req/s",
        p1["rps"] / ref["rps"], "report")
    row("P1-pg session check p99", fmt_ms(p1["p99"]),
        f"bare hyper {fmt_ms(ref['p99'])}; redb {fmt_ms(redb['p1']['p99'])}",
        p1["p99"] / ref["p99"] if ref["p99"] else None)
    best_cpu = min(runs, key=lambda r: r["cpu_us"] + r["pg_us"])
    row("P1-pg CPU per session check (gatehouse + PostgreSQL processes)",
        f"{best_cpu['cpu_us']:.1f} µs + {best_cpu['pg_us']:.1f} µs",
        f"redb: {redb['p1_cpu']:.1f} µs in gatehouse alone")

    # ---- P2-pg: logins against the bcrypt bound, interleaved
    bound, lg, text = login_rounds(logins, g, "pg-")
    log("P2-pg " + text)
    r2 = lg["logins"] / bound["per_second"]
    row("P2-pg logins on PostgreSQL (valid credentials, cost 12, wrk -c8)",
        f"{lg['logins']:.2f} logins/s",
        f"bcrypt verify {bound['per_second']:.2f}/s; redb above {redb['p2']['logins']:.2f} logins/s",
        r2, "≥ 0.9", r2 >= 0.9)
    retire(g)

    # ---- Round trips per request, counted by a relay in front of the
    # database (one Sync or simple Query = one wait for the server).
    relay = PgRoundTrips(pg.port)
    try:
        gr = spawn(data_dir("pg-rt"), "pg-rt", extra=on(pg.database("bench_small", relay.port)))
        rcookie = login(gr.base, "user520")
        secret, body = login_form(gr.base, "user521")
        post_login(gr.base, secret, body)  # the login's statements prepared
        # What the server asks by itself (outbox, housekeeping, Summary
        # sampler) while nobody calls, to take away from the counts below.
        c0, t0 = relay.read(), time.monotonic()
        time.sleep(6)
        idle_rate = (relay.read() - c0) / (time.monotonic() - t0)

        def counted(n, call):
            c0, t0 = relay.read(), time.monotonic()
            for _ in range(n):
                call()
            elapsed = time.monotonic() - t0
            return (relay.read() - c0 - idle_rate * elapsed) / n

        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", gr.port, timeout=10)

        def check():
            conn.request("GET", "/api/v1/session", headers={"Cookie": rcookie})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"session check through the relay answered {resp.status}")

        def one_login():
            status, _ = post_login(gr.base, secret, body)
            if status != 303:
                raise RuntimeError(f"login through the relay answered {status}")

        rt_session = counted(2000, check)
        rt_login = counted(10, one_login)
        conn.close()
        retire(gr)
    finally:
        relay.stop()
    log(f"round trips: session check {rt_session:.2f}, login {rt_login:.2f}; "
        f"idle {idle_rate * 60:.0f}/min")
    row("Database round trips per session check (GET /api/v1/session, counted at the wire)",
        f"{rt_session:.2f}", f"redb: none (in-process); at 1 ms to the database ≈ "
        f"+{rt_session:.0f} ms per request", None, "report")
    row("Database round trips per login (POST /login, valid password)",
        f"{rt_login:.1f}", f"at 1 ms to the database ≈ +{rt_login:.0f} ms per login "
        f"(bcrypt is ~{bound['ms_per_verify_per_thread']:.0f} ms)", None, "report")
    notes.append(f"an idle server on PostgreSQL makes {idle_rate * 60:.0f} round trips a "
                 f"minute by itself (outbox, housekeeping, Summary)")

    # ---- P5-pg: 1,000 vs BIG_USERS users
    sets = (("1k", pg.database("bench_p5_small"), SMALL_USERS),
            ("big", pg.database("bench_p5_big"), BIG_USERS))
    per_user = None
    for label, url, n in sets:
        t = time.monotonic()
        info = seed(data_dir(f"pg-p5-{label}"), n, url)
        log(f"seeded {info['users']} users into PostgreSQL in {time.monotonic() - t:.1f}s "
            f"({info['file_bytes'] / MIB:.0f} MiB of tables)")
        if label == "big":
            per_user = info["file_bytes"] / info["users"]
            big_bytes = info["file_bytes"]
    m = scale_runs(work, spawn, session, logins,
                   [(label, data_dir(f"pg-p5-{label}"), n, on(url)) for label, url, n in sets], "pg-")
    for s in m["srv"].values():
        retire(s)
    cold, rss_start = m["cold"], m["rss"]
    a_s, b_s = best(m["sess"]["1k"]), best(m["sess"]["big"])
    a_lc, b_lc = m["login_ms"]["1k"], m["login_ms"]["big"]
    a_sc, b_sc = m["check_us"]["1k"], m["check_us"]["big"]
    big_label = f"{BIG_USERS:,}"
    log(f"P5-pg cold start {cold['1k'][0] * 1000:.0f} / {cold['big'][0] * 1000:.0f} ms; session "
        f"{a_s['rps']:.0f} / {b_s['rps']:.0f} req/s; login CPU {a_lc:.0f} / {b_lc:.0f} ms")
    rl = b_lc / a_lc
    row(f"P5-pg login cost on PostgreSQL, {big_label} vs 1,000 users (gatehouse CPU per login)",
        f"{b_lc:.0f} ms", f"{a_lc:.0f} ms; redb {redb['login_big'] / redb['login_1k']:.2f}", rl,
        "≤ 1.2", rl <= 1.2)
    rs = b_sc / a_sc
    row(f"P5-pg session-check cost on PostgreSQL, {big_label} vs 1,000 users (gatehouse CPU)",
        f"{b_sc:.1f} µs ({b_s['rps']:,.0f} req/s, p99 {fmt_ms(b_s['p99'])})",
        f"{a_sc:.1f} µs ({a_s['rps']:,.0f} req/s); redb {redb['sess_big'] / redb['sess_1k']:.2f}",
        rs, "≤ 1.2", rs <= 1.2)
    row(f"P5-pg database bytes per user on PostgreSQL ({big_label} users, tables + indexes, "
        "vacuumed)", f"{per_user:,.0f} B",
        f"{big_bytes / MIB:,.0f} MiB; redb {redb['per_user']:,.0f} B", None, "≤ 1 KiB",
        per_user <= 1024)
    row(f"P5-pg cold start on PostgreSQL, {big_label} users (spawn → first 200 on /healthz)",
        f"{cold['big'][0] * 1000:,.0f} ms", f"1,000 users {cold['1k'][0] * 1000:.0f} ms",
        cold["big"][0] / cold["1k"][0], "≤ 200 ms", cold["big"][0] <= 0.2)
    row(f"P5-pg RSS after start on PostgreSQL, {big_label} users", f"{rss_start['big']:.1f} MiB",
        f"1,000 users {rss_start['1k']:.1f} MiB")

    replicas_rows(pg, row, notes, work, spawn, retire)


def replicas_rows(pg, row, notes, work, spawn, retire):
    """R: two replicas on one database behind nginx, under session checks
    with logins and wrong passwords meanwhile; then every session is
    checked on each replica, and the lockouts counted."""
    url = pg.database("bench_replicas")
    seed(os.path.join(work, "rep-seed"), SMALL_USERS, url)
    extra = ("--database", url, "--trusted-proxies", "loopback")
    a = spawn(os.path.join(work, "rep-a"), "replica-a", extra=extra)
    b = spawn(os.path.join(work, "rep-b"), "replica-b", extra=extra)
    both, one = free_port(), free_port()
    common = ('proxy_http_version 1.1; proxy_set_header Connection ""; '
              "proxy_set_header Host $http_host; "
              "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
              "proxy_set_header X-Forwarded-Proto $scheme;")
    conf = (f"upstream gatehouse_both {{ server 127.0.0.1:{a.port}; server 127.0.0.1:{b.port}; "
            "keepalive 64; }\n"
            f"upstream gatehouse_one {{ server 127.0.0.1:{a.port}; keepalive 64; }}\n"
            f"server {{ listen 127.0.0.1:{both}; location / {{ proxy_pass http://gatehouse_both; "
            f"{common} }} }}\n"
            f"server {{ listen 127.0.0.1:{one}; location / {{ proxy_pass http://gatehouse_one; "
            f"{common} }} }}\n")
    ngx = Nginx(work, conf, (both, one))
    lb = f"http://127.0.0.1:{both}"
    try:
        cookies = [login(lb, f"user{600 + i}") for i in range(20)]
        script = os.path.join(work, "sessions.lua")
        with open(script, "w") as f:
            f.write(SESSIONS_LUA.format(cookies=", ".join(json.dumps(c) for c in cookies)))
        wrk(lb + "/api/v1/session", 64, 1, script=script, latency=False)
        ones, twos = [], []
        for _ in range(ROUNDS):
            ones.append(wrk(f"http://127.0.0.1:{one}/api/v1/session", 64, 5, script=script))
            twos.append(wrk(lb + "/api/v1/session", 64, 5, script=script))

        # The run: session checks through nginx, and meanwhile logins
        # (new sessions) and wrong passwords, all through nginx.
        victims = [f"user{800 + i}" for i in range(3)]
        controls = [f"user{810 + i}" for i in range(3)]
        # Round-robin order: each account's tries go to both replicas.
        tries = [u for k in range(11) for u in victims + (controls if k < 10 else [])]
        answers, made, errors = {}, [], []
        lock = threading.Lock()
        over = threading.Event()

        def wrong_passwords():
            while True:
                with lock:
                    if not tries:
                        return
                    user = tries.pop(0)
                try:
                    secret, body = login_form(lb, user, "not-the-Password-7")
                    status, _ = post_login(lb, secret, body)
                except OSError as e:
                    status = f"{type(e).__name__}"
                with lock:
                    answers[status] = answers.get(status, 0) + 1

        def new_sessions():
            i = 0
            while not over.is_set():
                try:
                    made.append(login(lb, f"user{700 + i}"))
                except (OSError, RuntimeError) as e:
                    errors.append(f"login user{700 + i}: {e}")
                i += 1

        cpu0 = (cpu_seconds(a.pid), cpu_seconds(b.pid))
        workers = [threading.Thread(target=wrong_passwords) for _ in range(4)]
        workers.append(threading.Thread(target=new_sessions))
        for w in workers:
            w.start()
        run = wrk(lb + "/api/v1/session", 64, 20, script=script)
        cpu = (cpu_seconds(a.pid) - cpu0[0], cpu_seconds(b.pid) - cpu0[1])
        over.set()
        for w in workers:
            w.join()
        bad = {k: v for k, v in answers.items() if not (isinstance(k, int) and k < 500)}
        errors += [f"wrong password answered {k} ×{v}" for k, v in bad.items()]
        if run["non2xx"] or run["socket_errors"]:
            errors.append(f"session checks: {run['non2xx']} non-2xx, socket errors "
                          f"{run['socket_errors'] or '-'}")

        # Every session, made before or during the run, on each replica.
        every = cookies + made
        lost = sum(1 for c in every for s in (a, b) if session_status(s.base, c) != 200)
        # Lockouts: the right password is refused (429) on both replicas for
        # each victim and accepted for each control; the audit counts locks.
        locked = 0
        for v in victims:
            st = []
            for s in (a, b):
                secret, body = login_form(s.base, v)
                st.append(post_login(s.base, secret, body)[0])
            locked += all(x == 429 for x in st)
        open_controls = 0
        for c in controls:
            secret, body = login_form(lb, c)
            open_controls += post_login(lb, secret, body)[0] == 303
        audit = json.loads(sh([GATEHOUSE, "audit", "--json", "--limit", "100000"],
                              env=dict(os.environ, GATEHOUSE_DATABASE=url)))
        # A lock is two events: the typed ID's and the account's (any name).
        locks = [e for e in audit if e.get("kind") == "lock_set"]
        account_locks = sum(1 for e in locks if (e.get("subject") or "").startswith("the account"))
        id_locks = len(locks) - account_locks
        failed_events = sum(1 for e in audit if e.get("kind") == "login_failed")
    finally:
        ngx.stop()
        retire(a)
        retire(b)
    one_best, two_best = best(ones), best(twos)
    log(f"R one replica {[round(r['rps']) for r in ones]}, two {[round(r['rps']) for r in twos]} "
        f"req/s; run {run['rps']:.0f} req/s, CPU A {cpu[0]:.1f} s B {cpu[1]:.1f} s; "
        f"wrong-password answers {answers}; {len(made)} logins meanwhile; lost {lost}; "
        f"locked {locked}, controls open {open_controls}; audit lock_set {id_locks} + "
        f"{account_locks}, "
        f"login_failed {failed_events}; errors {errors}")
    row("R two replicas on one PostgreSQL behind nginx (round robin), session checks over "
        "20 sessions, wrk -c64", f"{two_best['rps']:,.0f} req/s",
        f"same nginx, one replica {one_best['rps']:,.0f} req/s", two_best["rps"] / one_best["rps"],
        "report")
    row("R the 20 s run: session checks while logins and wrong passwords go through nginx",
        f"{run['rps']:,.0f} req/s; {len(made)} logins; CPU A {cpu[0]:.1f} s, B {cpu[1]:.1f} s",
        f"wrong-password answers: " + ", ".join(f"{v}×{k}" for k, v in sorted(
            answers.items(), key=str)))
    row("R errors during the run (non-2xx session checks, socket errors, failed logins, 5xx)",
        f"{len(errors)}", "; ".join(errors)[:200] or "-", None, "0", not errors)
    row("R sessions lost (made before and during the run, then checked on A and on B)",
        f"{lost} of {len(every) * 2} checks", f"{len(every)} sessions", None, "0", lost == 0)
    nv, nc = len(victims), len(controls)
    wrong = nv * 11 + nc * 10
    row(f"R lockouts across replicas ({nv} accounts × 11 wrong passwords, {nc} × 10, "
        "interleaved over A and B)", f"{locked} of {nv} locked on both replicas; "
        f"{open_controls} of {nc} others not locked",
        f"audit: {id_locks} ID locks + {account_locks} account locks, {failed_events} of "
        f"{wrong} failures", None, f"exactly {nv} locks",
        locked == nv == id_locks == account_locks and open_controls == nc
        and failed_events == wrong)


def main():
    ensure_wrk()
    ensure_nginx()
    if not os.environ.get("BENCH_NO_POSTGRES"):
        ensure_postgres()
    fd_limit = raise_fd_limit()
    build()
    for exe in (GATEHOUSE, *(os.path.join(EXAMPLES, e) for e in
                             ("bench_seed", "bench_bcrypt", "bench_hello", "bench_rs256"))):
        if not os.access(exe, os.X_OK):
            sys.exit(f"missing {exe}: run without BENCH_NO_BUILD")
    load_before = loadavg()
    work = tempfile.mkdtemp(prefix="gatehouse-bench-")
    log(f"work dir {work}; load average {load_before}; open-file limit {fd_limit}")
    rows, notes = [], []

    def row(figure, value, reference="-", ratio=None, target="-", met=None):
        rows.append((figure, value, reference,
                     "-" if ratio is None else f"{ratio:.2f}", target,
                     "-" if met is None else ("yes" if met else "**no**")))

    servers = []

    def spawn(data_dir, name, env=None, extra=()):
        s = Server(data_dir, work, name, env=env, extra=extra)
        servers.append(s)
        s.start()
        return s

    def retire(s):
        s.stop()
        servers.remove(s)

    def session(s, cookie, conns, seconds):
        r = wrk(s.base + "/api/v1/session", conns, seconds, headers=[f"Cookie: {cookie}"],
                pid=s.pid)
        if r["non2xx"] or r["socket_errors"]:
            notes.append(f"{s.name} -c{conns}: {r['non2xx']} non-2xx, socket errors "
                         f"{r['socket_errors'] or '-'}")
        return r

    def logins(s, user, name, seconds, conns=8):
        script = login_script(work, s.base, user, name)
        r = wrk(s.base + "/login", conns, seconds, script=script, pid=s.pid)
        st = r.get("status", {})
        r["logins"] = int(st.get("303", 0)) / seconds
        if int(st.get("303", 0)) != r["requests"]:
            notes.append(f"{name}: not every login succeeded: {st}")
        return r

    try:
        # ---------------- seed, start, idle RSS
        small = os.path.join(work, "small")
        info = seed(small, SMALL_USERS)
        log(f"seeded {info['users']} users in {info['seconds']:.1f}s")
        gh = spawn(small, "main")
        time.sleep(1.0)
        rss_idle = rss_mib(gh.pid)
        log(f"idle RSS {rss_idle:.1f} MiB")
        cookie = login(gh.base, "user500")

        # ---------------- P1: session check vs bare hyper, interleaved
        quiet_dir = os.path.join(work, "quietlog")
        seed(quiet_dir, SMALL_USERS)
        ghq = spawn(quiet_dir, "quietlog", env={"GATEHOUSE_LOG": "warn"})
        qcookie = login(ghq.base, "user500")
        hello = Hello()
        refs, mains, quiets = [], [], []
        try:
            wrk(hello.base + "/", 64, 1, latency=False)
            session(gh, cookie, 64, 1)
            session(ghq, qcookie, 64, 1)
            for _ in range(ROUNDS):
                refs.append(wrk(hello.base + "/", 64, 5, pid=hello.proc.pid))
                mains.append(session(gh, cookie, 64, 5))
                quiets.append(session(ghq, qcookie, 64, 5))
        finally:
            hello.stop()
            retire(ghq)
        ref, p1, p1q = best(refs), best(mains), best(quiets)
        log("P1 hello " + ", ".join(f"{r['rps']:.0f}" for r in refs) + " req/s; gatehouse "
            + ", ".join(f"{r['rps']:.0f}" for r in mains) + "; with GATEHOUSE_LOG=warn "
            + ", ".join(f"{r['rps']:.0f}" for r in quiets))
        r1 = p1["rps"] / ref["rps"]
        row("P1 session check (GET /api/v1/session, wrk -t2 -c64)", f"{p1['rps']:,.0f} req/s",
            f"bare hyper hello {ref['rps']:,.0f} req/s", r1, "≥ 0.6", r1 >= 0.6)
        row("P1 session check p99", fmt_ms(p1["p99"]), f"bare hyper {fmt_ms(ref['p99'])}",
            p1["p99"] / ref["p99"] if ref["p99"] else None)
        cpu_ref = min(r["cpu_us"] for r in refs)
        cpu_gh = min(r["cpu_us"] for r in mains)
        cpu_q = min(r["cpu_us"] for r in quiets)
        row("P1 server CPU per session check (user + system, incl. its TCP work)",
            f"{cpu_gh:.1f} µs (log off: {cpu_q:.1f} µs)", f"bare hyper {cpu_ref:.1f} µs",
            cpu_ref / cpu_gh)
        r1q = p1q["rps"] / ref["rps"]
        row("P1 session check, request log off (GATEHOUSE_LOG=warn)", f"{p1q['rps']:,.0f} req/s",
            f"bare hyper hello {ref['rps']:,.0f} req/s", r1q, "(≥ 0.6)", r1q >= 0.6)

        # ---------------- P2: logins vs the bcrypt bound, interleaved
        bound, lg, text = login_rounds(logins, gh, "")
        log("P2 " + text)
        r2 = lg["logins"] / bound["per_second"]
        row("P2 logins (valid credentials, cost 12, wrk -c8)", f"{lg['logins']:.2f} logins/s",
            f"bcrypt verify, {bound['threads']} threads: {bound['per_second']:.2f}/s "
            f"({bound['ms_per_verify_per_thread']:.0f} ms each)", r2, "≥ 0.9", r2 >= 0.9)
        cap = max(lg["logins"], 0.5)

        # ---------------- V1, V2: forward auth
        authz_dir = os.path.join(work, "authz")
        seed(authz_dir, SMALL_USERS)
        rules = os.path.join(work, "access.toml")
        with open(rules, "w") as f:
            f.write(f'[[access]]\nhosts = ["{APP_HOST}"]\npolicy = "allow"\n')
        gha = spawn(authz_dir, "authz", env={"GATEHOUSE_LOG": "warn"},
                    extra=("--trusted-proxies", "loopback", "--config", rules))
        acookie = login(gha.base, "user500")
        verify_headers = [f"Cookie: {acookie}", f"X-Original-URL: http://{APP_HOST}/page",
                          "X-Original-Method: GET"]

        def verify(conns, seconds):
            r = wrk(gha.base + "/api/authz/auth-request", conns, seconds, headers=verify_headers,
                    pid=gha.pid)
            if r["non2xx"] or r["socket_errors"]:
                notes.append(f"verify -c{conns}: {r['non2xx']} non-2xx, socket errors "
                             f"{r['socket_errors'] or '-'}")
            return r

        hello = Hello()
        try:
            vrefs, vruns = [], []
            wrk(hello.base + "/", 64, 1, latency=False)
            verify(64, 1)
            for _ in range(ROUNDS):
                vrefs.append(wrk(hello.base + "/", 64, 5, pid=hello.proc.pid))
                vruns.append(verify(64, 5))
            vref, v1 = best(vrefs), best(vruns)
            log("V1 hello " + ", ".join(f"{r['rps']:.0f}" for r in vrefs) + " req/s; verify "
                + ", ".join(f"{r['rps']:.0f}" for r in vruns))
            rv = v1["rps"] / vref["rps"]
            row("V1 forward-auth check (GET /api/authz/auth-request, session + rules, wrk -t2 -c64)",
                f"{v1['rps']:,.0f} req/s", f"bare hyper hello {vref['rps']:,.0f} req/s", rv,
                "≥ 0.7", rv >= 0.7)
            row("V1 forward-auth check p99", fmt_ms(v1["p99"]), f"bare hyper {fmt_ms(vref['p99'])}",
                v1["p99"] / vref["p99"] if vref["p99"] else None)
            row("V1 server CPU per check", f"{min(r['cpu_us'] for r in vruns):.1f} µs",
                f"bare hyper {min(r['cpu_us'] for r in vrefs):.1f} µs",
                min(r["cpu_us"] for r in vrefs) / min(r["cpu_us"] for r in vruns))

            # V2: nginx with the printed snippet in front of the hello
            # app, against the same nginx passing to it directly.
            guarded, direct = free_port(), free_port()
            hello_url = hello.base
            snip = sh([GATEHOUSE, "proxy", "snippet", "nginx", "--host", APP_HOST,
                       "--upstream", hello_url, "--gatehouse", gha.base,
                       "--http-port", str(guarded)])
            plain = (f"server {{\n  listen {direct};\n  server_name {APP_HOST};\n"
                     f"  location / {{ proxy_pass {hello_url}; proxy_set_header Host $host; }}\n}}\n")
            ngx = Nginx(work, snip + plain, (guarded, direct))
            try:
                nh = [f"Host: {APP_HOST}", f"Cookie: {acookie}"]
                wrk(f"http://127.0.0.1:{guarded}/", 64, 1, headers=nh, latency=False)
                gruns, druns = [], []
                for _ in range(ROUNDS):
                    druns.append(wrk(f"http://127.0.0.1:{direct}/", 64, 5, headers=nh))
                    gruns.append(wrk(f"http://127.0.0.1:{guarded}/", 64, 5, headers=nh))
                for r, what in ((best(gruns), "guarded"), (best(druns), "direct")):
                    if r["non2xx"] or r["socket_errors"]:
                        notes.append(f"nginx {what}: {r['non2xx']} non-2xx, socket errors "
                                     f"{r['socket_errors'] or '-'}")
            finally:
                ngx.stop()
            g, dr = best(gruns), best(druns)
            log("V2 nginx direct " + ", ".join(f"{r['rps']:.0f}" for r in druns)
                + " req/s; with auth_request " + ", ".join(f"{r['rps']:.0f}" for r in gruns))
            row("V2 nginx + auth_request to gatehouse (printed snippet), wrk -c64",
                f"{g['rps']:,.0f} req/s, p99 {fmt_ms(g['p99'])}",
                f"same nginx to the app directly {dr['rps']:,.0f} req/s, p99 {fmt_ms(dr['p99'])}",
                g["rps"] / dr["rps"], "report")
        finally:
            hello.stop()
            retire(gha)

        # ---------------- O1, O2: OpenID Connect
        oidc_dir = os.path.join(work, "oidc")
        seed(oidc_dir, SMALL_USERS)
        gho = spawn(oidc_dir, "oidc", env={"GATEHOUSE_LOG": "warn"})
        try:
            ocookie = login(gho.base, "user500")
            fields, access = oidc_setup(gho, ocookie)
            oscript = os.path.join(work, "oidc.lua")
            with open(oscript, "w") as f:
                f.write(OIDC_LUA.format(**fields))
            signing = json.loads(sh([os.path.join(EXAMPLES, "bench_rs256"), "5"]))
            log(f"O1 RS256 bound: {signing}")
            hello = Hello()
            try:
                urefs, uruns, xruns = [], [], []
                bearer = [f"Authorization: Bearer {access}"]
                wrk(hello.base + "/", 64, 1, latency=False)
                wrk(gho.base + "/oidc/userinfo", 64, 1, headers=bearer, latency=False)
                for _ in range(ROUNDS):
                    urefs.append(wrk(hello.base + "/", 64, 5, pid=hello.proc.pid))
                    uruns.append(wrk(gho.base + "/oidc/userinfo", 64, 5, headers=bearer,
                                     pid=gho.pid))
                    xruns.append(wrk(gho.base + "/", 16, 5, script=oscript, pid=gho.pid))
            finally:
                hello.stop()
            for r in uruns:
                if r["non2xx"] or r["socket_errors"]:
                    notes.append(f"userinfo: {r['non2xx']} non-2xx, socket errors "
                                 f"{r['socket_errors'] or '-'}")
            for r in xruns:
                st = r.get("status", {})
                r["exchanges"] = int(st.get("200", 0)) / 5
                odd = {k: v for k, v in st.items() if k not in ("200", "303")}
                if odd:
                    notes.append(f"code exchange: unexpected answers {odd}")
            uref, u1 = best(urefs), best(uruns)
            x1 = best(xruns, key="exchanges")
            log("O1 exchanges/s " + ", ".join(f"{r['exchanges']:.0f}" for r in xruns)
                + "; O2 hello " + ", ".join(f"{r['rps']:.0f}" for r in urefs)
                + " req/s; userinfo " + ", ".join(f"{r['rps']:.0f}" for r in uruns))
            rx = x1["exchanges"] / signing["per_second"]
            row("O1 OIDC code exchanges (authorization request + POST /oidc/token, "
                "client_secret_basic + PKCE, wrk -c16)", f"{x1['exchanges']:,.0f} exchanges/s",
                f"RS256 ID-token signing, {signing['threads']} threads: "
                f"{signing['per_second']:,.0f}/s", rx, "≥ 0.15", rx >= 0.15)
            ru = u1["rps"] / uref["rps"]
            row("O2 OIDC userinfo (GET /oidc/userinfo, Bearer, wrk -t2 -c64)",
                f"{u1['rps']:,.0f} req/s", f"bare hyper hello {uref['rps']:,.0f} req/s", ru,
                "report")
            row("O2 userinfo p99", fmt_ms(u1["p99"]), f"bare hyper {fmt_ms(uref['p99'])}",
                u1["p99"] / uref["p99"] if uref["p99"] else None)
        finally:
            retire(gho)

        # ---------------- P3: isolation under a login flood
        # 64 connections, each pausing between its requests so that the
        # offered rate is ~4x capacity: with 34 requests held by the pool
        # (2 hashing + 32 queued), rate = (64 - 34) / pause.
        flood_conns, flood_s = 64, 14
        delay_ms = 1000.0 * (flood_conns - 34) / (4 * cap)
        fscript = login_script(work, gh.base, "user600", "flood", delay_ms=delay_ms)
        before = [session(gh, cookie, 16, 5)]
        flood, probes = {}, []
        flood_over = threading.Event()

        def run_flood():
            flood.update(wrk(gh.base + "/login", flood_conns, flood_s, script=fscript))
            flood_over.set()

        def run_probe():
            # Sequential logins on fresh connections while the flood runs:
            # how fast is a refused one refused?
            secret, body = login_form(gh.base, "user601")
            opener = urllib.request.build_opener(NoRedirect)
            while not flood_over.is_set():
                req = urllib.request.Request(gh.base + "/login", data=body.encode(),
                                             method="POST", headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Cookie": f"gatehouse_csrf={secret}"})
                t = time.monotonic()
                try:
                    r = opener.open(req, timeout=30)
                    status, ra = r.status, r.headers.get("Retry-After")
                except urllib.error.HTTPError as e:
                    status, ra = e.code, e.headers.get("Retry-After")
                except OSError:
                    continue
                probes.append((status, (time.monotonic() - t) * 1000, ra))
                time.sleep(0.2)

        ft = threading.Thread(target=run_flood)
        ft.start()
        time.sleep(3.0)  # the queue fills
        pt = threading.Thread(target=run_probe)
        pt.start()
        under = [session(gh, cookie, 16, 5), session(gh, cookie, 16, 5)]
        ft.join()
        pt.join()
        after = session(gh, cookie, 16, 5)
        base_runs = before + [after]
        b99, u99 = p99_mean(base_runs), p99_mean(under)
        r3 = u99 / b99
        fst = flood.get("status", {})
        offered = flood["requests"] / flood_s
        admitted = int(fst.get("303", 0)) / flood_s
        busy = [p for p in probes if p[0] in (429, 503)]
        log(f"P3 p99 without {[r['p99'] for r in base_runs]} with {[r['p99'] for r in under]} ms; "
            f"flood {offered:.1f} req/s, {fst}; probes {[(p[0], round(p[1])) for p in probes]}")
        row("P3 session p99 under a login flood (wrk -c16, mean of 2 runs)", fmt_ms(u99),
            f"without the flood {fmt_ms(b99)}", r3, "≤ 3×", r3 <= 3)
        row("P3 session throughput under the flood", f"{statistics.mean(r['rps'] for r in under):,.0f} req/s",
            f"without {statistics.mean(r['rps'] for r in base_runs):,.0f} req/s",
            statistics.mean(r["rps"] for r in under) / statistics.mean(r["rps"] for r in base_runs))
        answered = ", ".join(f"{v}×{k.replace('503ra', '503+Retry-After')}"
                             for k, v in sorted(fst.items()))
        if busy:
            busy_txt = (f"probe: {len(busy)}/{len(probes)} refused, in ≤ "
                        f"{max(p[1] for p in busy):.0f} ms (median {statistics.median(p[1] for p in busy):.1f} ms)")
        else:
            busy_txt = f"probe: none of {len(probes)} refused"
        quick = bool(busy) and all(p[2] for p in busy) and max(p[1] for p in busy) < 100
        row("P3 how the flood was answered", f"{offered:.1f} req/s offered = {offered / cap:.1f}× "
            f"capacity; {answered}; {busy_txt}",
            f"admitted {admitted:.2f} logins/s = {admitted / cap:.2f}× capacity", None,
            "excess gets 429/503 quickly", quick)

        # ---------------- P4: memory under 1,000 keep-alive connections
        samples = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                v = rss_mib(gh.pid)
                if v:
                    samples.append(v)
                time.sleep(0.1)

        st_thread = threading.Thread(target=sample)
        st_thread.start()
        p4 = session(gh, cookie, 1000, 6)
        done.set()
        st_thread.join()
        rss_loaded = max(samples)
        log(f"P4 idle {rss_idle:.1f} MiB, 1000 conns {rss_loaded:.1f} MiB ({p4['rps']:.0f} req/s)")
        row("P4 RSS idle (after start, 1,000 users)", f"{rss_idle:.1f} MiB", "-", None,
            "≤ 16 MiB", rss_idle <= 16)
        row("P4 RSS, 1,000 keep-alive connections (wrk -c1000, peak)", f"{rss_loaded:.1f} MiB",
            f"{p4['rps']:,.0f} req/s served meanwhile", None, "≤ 64 MiB", rss_loaded <= 64)
        retire(gh)

        # ---------------- P5: 1,000 vs 1,000,000 users
        fresh = os.path.join(work, "small2")
        seed(fresh, SMALL_USERS)
        big = os.path.join(work, "big")
        t = time.monotonic()
        binfo = seed(big, BIG_USERS)
        seed_s = time.monotonic() - t
        log(f"seeded {binfo['users']} users in {seed_s:.1f}s ({binfo['file_bytes'] / MIB:.0f} MiB)")
        per_user = binfo["file_bytes"] / binfo["users"]
        sets = (("1k", fresh, SMALL_USERS, ()), ("big", big, BIG_USERS, ()))
        m = scale_runs(work, spawn, session, logins, sets, "")
        cold, srv, rss_start, sess, lgs = m["cold"], m["srv"], m["rss"], m["sess"], m["lgs"]
        retire(srv["1k"])
        target = os.path.join(work, "backup.redb")
        t = time.monotonic()
        sh([GATEHOUSE, "--data-dir", big, "backup", "--to", target])
        backup_s = time.monotonic() - t
        backup_bytes = os.path.getsize(target)
        os.remove(target)
        retire(srv["big"])
        for label, *_ in sets:
            log(f"P5 {label}: cold start {cold[label][0] * 1000:.0f} ms (max {cold[label][1] * 1000:.0f}), "
                f"RSS {rss_start[label]:.1f} MiB, session "
                + ", ".join(f"{r['rps']:.0f}" for r in sess[label]) + " req/s, logins "
                + ", ".join(f"{r['logins']:.2f}" for r in lgs[label]) + "/s")
        log(f"backup {backup_s:.1f}s")

        a_s, b_s = best(sess["1k"]), best(sess["big"])
        a_l, b_l = best(lgs["1k"], "logins")["logins"], best(lgs["big"], "logins")["logins"]
        a_lc, b_lc = m["login_ms"]["1k"], m["login_ms"]["big"]
        a_sc, b_sc = m["check_us"]["1k"], m["check_us"]["big"]
        big_label = f"{BIG_USERS:,}"
        rl = b_lc / a_lc
        row(f"P5 login cost, {big_label} vs 1,000 users (server CPU per login; wrk -c8, 6 s)",
            f"{b_lc:.0f} ms ({b_l:.2f} logins/s)", f"{a_lc:.0f} ms ({a_l:.2f} logins/s)", rl,
            "≤ 1.2", rl <= 1.2)
        rs = b_sc / a_sc
        row(f"P5 session-check cost, {big_label} vs 1,000 users (server CPU per request; wrk -c64, 5 s)",
            f"{b_sc:.1f} µs ({b_s['rps']:,.0f} req/s, p99 {fmt_ms(b_s['p99'])})",
            f"{a_sc:.1f} µs ({a_s['rps']:,.0f} req/s, p99 {fmt_ms(a_s['p99'])})", rs, "≤ 1.2",
            rs <= 1.2)
        row(f"P5 database bytes per user ({big_label} users, as seeded)",
            f"{per_user:,.0f} B", f"file {binfo['file_bytes'] / MIB:,.0f} MiB", None,
            "≤ 1 KiB", per_user <= 1024)
        row(f"P5 cold start, {big_label} users (spawn → first 200 on /healthz, median of 3)",
            f"{cold['big'][0] * 1000:,.0f} ms", f"1,000 users {cold['1k'][0] * 1000:.0f} ms",
            cold["big"][0] / cold["1k"][0], "≤ 200 ms", cold["big"][0] <= 0.2)
        row(f"P5 RSS after start, {big_label} users", f"{rss_start['big']:.1f} MiB",
            f"1,000 users {rss_start['1k']:.1f} MiB")
        row(f"P5 backup of {big_label} users (server running, via its socket)",
            f"{backup_s:.1f} s", f"{backup_bytes / MIB:,.0f} MiB written")

        # ---------------- PostgreSQL: P1, P2, P5 beside the rows above,
        # round trips per request, two replicas behind nginx
        if not os.environ.get("BENCH_NO_POSTGRES"):
            pg = PgCluster()
            try:
                postgres_rows(pg, row, notes, work, spawn, retire, session, logins,
                              redb={"p1": p1, "p1_cpu": cpu_gh, "p2": lg, "sess_1k": a_sc,
                                    "sess_big": b_sc, "login_1k": a_lc, "login_big": b_lc,
                                    "per_user": per_user})
            finally:
                for s in list(servers):
                    s.stop()
                    servers.remove(s)
                pg.stop()

        # ---------------- binary size
        dist = os.path.join(ROOT, "dist", "gatehouse")
        if os.path.exists(dist):
            kind = sh(["file", "-b", dist]).strip()
            static = "static" in kind
            row("Binary size (dist/gatehouse, musl, " + ("static" if static else "NOT static") + ")",
                f"{os.path.getsize(dist) / MIB:.1f} MiB",
                f"target/release/gatehouse (glibc) {os.path.getsize(GATEHOUSE) / MIB:.1f} MiB")
            if os.path.getmtime(dist) < os.path.getmtime(GATEHOUSE):
                notes.append("dist/gatehouse is older than target/release/gatehouse: `make dist` "
                             "rebuilds it")
        else:
            row("Binary size (target/release/gatehouse, glibc; no dist/gatehouse yet)",
                f"{os.path.getsize(GATEHOUSE) / MIB:.1f} MiB")
    finally:
        for s in list(servers):
            s.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)

    load_after = loadavg()
    mach = machine()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           cwd=ROOT, text=True, capture_output=True).stdout.strip()
    header = ("| Figure | Value | Reference (same run) | Ratio | Target | Met? |\n"
              "|---|---|---|---|---|---|\n")
    table = header + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    meta = (f"Run {stamp} on commit {commit}{' with uncommitted changes in src/' if dirty else ''}; "
            f"{mach['nproc']} cores ({mach['cpu']}), {mach['memory']} RAM, Linux {mach['kernel']}; "
            f"wrk and gatehouse share the cores. Load average (1, 5, 15 min) before "
            f"{load_before}, after {load_after}; `make bench` took {time.monotonic() - T0:.0f} s.\n")
    if notes:
        meta += "\nNotes: " + "; ".join(notes) + "\n"
    print()
    print(meta)
    print(table)
    if not os.environ.get("BENCH_NO_DOC"):
        write_doc(meta + "\n" + table)


def write_doc(section):
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = open(DOC).read() if os.path.exists(DOC) else f"# Performance\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n## Latest table\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(DOC, "w") as f:
        f.write(f"{head}{begin}\n{section}{end}{tail}")
    log(f"wrote the table into {os.path.relpath(DOC, ROOT)}")


if __name__ == "__main__":
    main()
