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
"""

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


def seed(data_dir, users):
    out = sh([os.path.join(EXAMPLES, "bench_seed"), data_dir, str(users), PASSWORD, str(COST)])
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


def login_form(base, user):
    """GET /login: the CSRF cookie and the form's token for it, and the
    form body for `user` (the token stays valid for that cookie)."""
    with urllib.request.urlopen(base + "/login", timeout=10) as r:
        html = r.read().decode()
        secret = cookie_values(r.headers)["gatehouse_csrf"]
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode({"csrf": token, "id": user, "password": PASSWORD,
                                   "endpoint": ""})
    return secret, body


def login(base, user):
    """Logs in once; returns the cookie header of the logged-in browser."""
    secret, body = login_form(base, user)
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(base + "/login", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"gatehouse_csrf={secret}"})
    try:
        r = opener.open(req, timeout=30)
        status, headers = r.status, r.headers
    except urllib.error.HTTPError as e:  # 303 lands here without redirects
        status, headers = e.code, e.headers
    cookies = cookie_values(headers)
    if status != 303 or "gatehouse_session" not in cookies:
        raise RuntimeError(f"login as {user} answered {status}")
    cookie = f"gatehouse_session={cookies['gatehouse_session']}; gatehouse_csrf={cookies['gatehouse_csrf']}"
    with urllib.request.urlopen(urllib.request.Request(
            base + "/api/v1/session", headers={"Cookie": cookie}), timeout=10) as r:
        if r.status != 200:
            raise RuntimeError(f"/api/v1/session answered {r.status}")
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


def ok_count(r):
    """Responses that were 2xx/3xx."""
    return r["requests"] - r["non2xx"]


# --------------------------------------------------------------------------
# The figures


def cold_start(data_dir, workdir, name, runs=3):
    times, rss = [], []
    for i in range(runs):
        s = Server(data_dir, workdir, f"{name}-start{i}")
        times.append(s.start())
        time.sleep(0.5)
        rss.append(rss_mib(s.pid))
        s.stop()
    return statistics.median(times), max(times), statistics.median(rss)


def fmt_ms(v):
    return "-" if v is None else (f"{v:.2f} ms" if v < 10 else f"{v:.0f} ms")


def best(runs, key="rps"):
    return max(runs, key=lambda r: r[key])


def p99_mean(runs):
    return statistics.mean(r["p99"] for r in runs)


def main():
    ensure_wrk()
    ensure_nginx()
    fd_limit = raise_fd_limit()
    build()
    for exe in (GATEHOUSE, *(os.path.join(EXAMPLES, e) for e in
                             ("bench_seed", "bench_bcrypt", "bench_hello"))):
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
        bounds, lruns = [], []
        for i in range(ROUNDS):
            bounds.append(json.loads(sh([os.path.join(EXAMPLES, "bench_bcrypt"), str(COST),
                                         "5"]).strip()))
            lruns.append(logins(gh, f"user{501 + i}", f"login{i}", 8))
        bound = max(bounds, key=lambda b: b["per_second"])
        lg = best(lruns, "logins")
        log("P2 bound " + ", ".join(f"{b['per_second']:.2f}" for b in bounds)
            + " verifies/s; logins " + ", ".join(f"{r['logins']:.2f}" for r in lruns) + "/s")
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
        sets = (("1k", fresh, SMALL_USERS), ("big", big, BIG_USERS))
        cold = {label: cold_start(d, work, label) for label, d, _ in sets}
        srv = {label: spawn(d, f"p5-{label}") for label, d, _ in sets}
        time.sleep(1.0)
        rss_start = {label: rss_mib(s.pid) for label, s in srv.items()}
        cookies = {label: login(srv[label].base, f"user{n // 2}") for label, _, n in sets}
        sess = {label: [] for label, _, _ in sets}
        lgs = {label: [] for label, _, _ in sets}
        for i in range(ROUNDS):
            for label, _, _ in sets:
                sess[label].append(session(srv[label], cookies[label], 64, 5))
        for i in range(ROUNDS):
            for label, _, n in sets:
                lgs[label].append(logins(srv[label], f"user{n // 2 + 1 + i}", f"login-{label}{i}", 6))
        retire(srv["1k"])
        target = os.path.join(work, "backup.redb")
        t = time.monotonic()
        sh([GATEHOUSE, "--data-dir", big, "backup", "--to", target])
        backup_s = time.monotonic() - t
        backup_bytes = os.path.getsize(target)
        os.remove(target)
        retire(srv["big"])
        for label, _, _ in sets:
            log(f"P5 {label}: cold start {cold[label][0] * 1000:.0f} ms (max {cold[label][1] * 1000:.0f}), "
                f"RSS {rss_start[label]:.1f} MiB, session "
                + ", ".join(f"{r['rps']:.0f}" for r in sess[label]) + " req/s, logins "
                + ", ".join(f"{r['logins']:.2f}" for r in lgs[label]) + "/s")
        log(f"backup {backup_s:.1f}s")

        a_s, b_s = best(sess["1k"]), best(sess["big"])
        a_l, b_l = best(lgs["1k"], "logins")["logins"], best(lgs["big"], "logins")["logins"]
        # Cost = the server's CPU time per request (least disturbed by
        # other work); the best of the rounds on each side.
        a_lc = min(r["cpu_s"] / max(int(r["status"].get("303", 0)), 1) for r in lgs["1k"]) * 1000
        b_lc = min(r["cpu_s"] / max(int(r["status"].get("303", 0)), 1) for r in lgs["big"]) * 1000
        a_sc = min(r["cpu_us"] for r in sess["1k"])
        b_sc = min(r["cpu_us"] for r in sess["big"])
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
