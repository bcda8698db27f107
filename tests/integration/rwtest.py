"""Shared helpers for relaywatch's integration tests (run by meson).

Each test is a script run with /usr/bin/python3 (Debian's, which has
aiosmtpd and scapy); meson passes paths through the environment:
  RELAYWATCH        the built sensor binary
  RELAYWATCH_ALERTS, RELAYWATCH_TOP   the built readers
  RW_SOURCE_ROOT    the repository
  RW_BUILD_ROOT     the build directory
  RW_CORPUS         optional: the conformance corpus (default ../shared/corpus)
Exit status 77 tells meson the test was skipped.
"""
import atexit
import json
import os
import socket
import subprocess
import sys
import time

SKIP = 77

SOURCE = os.environ.get("RW_SOURCE_ROOT", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("RW_BUILD_ROOT", os.path.join(SOURCE, "build"))
RELAYWATCH = os.environ.get("RELAYWATCH", os.path.join(BUILD, "sensor", "relaywatch"))
RELAYWATCH_ALERTS = os.environ.get("RELAYWATCH_ALERTS",
                                   os.path.join(BUILD, "counters", "relaywatch-alerts"))
RELAYWATCH_TOP = os.environ.get("RELAYWATCH_TOP", os.path.join(BUILD, "counters", "relaywatch-top"))


def corpus_dir():
    d = os.environ.get("RW_CORPUS") or os.path.join(SOURCE, "..", "shared", "corpus")
    return os.path.abspath(d) if os.path.isdir(d) else None


def run(args, check=True, input=None, env=None, timeout=600):
    """Run relaywatch with args; returns CompletedProcess (text)."""
    p = subprocess.run([RELAYWATCH] + list(args), capture_output=True, text=True,
                       input=input, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("relaywatch %s exited %d:\n%s" % (" ".join(args), p.returncode,
                                                              p.stderr))
    return p


def records(pcap, *extra):
    """Transaction records of a capture, as dicts, in output order."""
    p = run(["-r", pcap, "--redis", "none", "-q", "--records", "-"] + list(extra))
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def flows(pcap, *extra):
    p = run(["-r", pcap, "--redis", "none", "-q", "--flows", "-"] + list(extra))
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


class Checker:
    """Collects failures; every check names what it compared."""

    def __init__(self):
        self.failures = 0
        self.checks = 0

    def eq(self, what, got, want):
        self.checks += 1
        if got != want:
            self.failures += 1
            print("FAIL %s: got %r, want %r" % (what, got, want))
            return False
        return True

    def true(self, what, cond):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL %s" % what)
        return bool(cond)

    def done(self):
        print("%d checks, %d failed" % (self.checks, self.failures))
        sys.exit(1 if self.failures else 0)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real, throwaway redis-server on a spare port in a temporary directory
    (as hiredis' own tests do). Use as a context manager.

    extra: more redis-server arguments, e.g. ["--aclfile", path] or
    ["--appendonly", "yes", "--appendfsync", "always"]. start() after stop()
    or kill() restarts it on the same port and directory (the AOF survives)."""

    def __init__(self, extra=None):
        import tempfile
        self._tmp = tempfile.TemporaryDirectory(prefix="rw-redis-")
        self.dir = self._tmp.name
        self.port = free_port()
        self.extra = list(extra or [])
        self.proc = None
        self.url = "redis://127.0.0.1:%d" % self.port

    def start(self, ready=True):
        """ready=False: return as soon as it answers at all, LOADING included
        (a dataset being read at start)."""
        import time
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--logfile", os.path.join(self.dir, "log")]
        if "--appendonly" not in self.extra:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args + self.extra, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: " + self.log())
            r = subprocess.run(["redis-cli", "-p", str(self.port), "PING"], capture_output=True,
                               text=True)
            if "PONG" in r.stdout or "NOAUTH" in r.stdout + r.stderr or (
                    not ready and "LOADING" in r.stdout + r.stderr):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer: " + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def cli(self, *args, user=None, password=None):
        """redis-cli as the default user (or user/password); returns stdout."""
        cmd = ["redis-cli", "-p", str(self.port), "--no-auth-warning"]
        if user:
            cmd += ["--user", user]
        if password:
            cmd += ["--pass", password]
        r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                           errors="replace")
        return r.stdout

    def keys(self):
        return [k for k in self.cli("--scan").splitlines() if k]

    def dump(self):
        """Every key with its type, TTL and value, as text (for greps)."""
        out = []
        for k in self.keys():
            t = self.cli("TYPE", k).strip()
            val = {"string": ("GET",), "hash": ("HGETALL",), "zset": ("ZRANGE", "0", "-1",
                   "WITHSCORES"), "stream": ("XRANGE", "-", "+"), "set": ("SMEMBERS",),
                   "list": ("LRANGE", "0", "-1")}.get(t)
            v = self.cli(*(val[:1] + (k,) + val[1:])) if val else ""
            out.append("%s %s %s\n%s" % (t, k, self.cli("TTL", k).strip(), v))
        return "\n".join(out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill(self):
        """SIGKILL: no shutdown save, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self._tmp.cleanup()


# --- for the Redis readers (relaywatch-alerts, relaywatch-top) ------------------------


def wait_for(what, cond, timeout=30.0, step=0.02):
    """Poll cond() until it is true; the generous timeout only guards against
    hanging (never a measurement). Returns cond()'s value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


class FaultProxy:
    """A TCP proxy between a program and a real redis-server that forwards
    one command at a time, in order, and can stand in for Redis' own
    misfortunes deterministically:

    - down = True: connections and logins (AUTH, CLIENT, SCRIPT, PING,
      SELECT) pass, but the first other command closes the connection, as
      a Redis that dies under a client;
    - inject(pred, reply): the next command for which pred(args) is true
      is not forwarded and gets the error reply instead (e.g. "BUSY ...",
      which Redis gives to the part of a pipeline it reads while another
      client's script runs, and executes the part it reads after);
    - inject(pred, LOSE_REPLY): the next such command is executed by Redis,
      and the connection closes before its reply (a network that failed
      after the command arrived).

    args are the command's arguments as bytes. Use as a context manager;
    url is where to point the program."""

    LOSE_REPLY = object()

    def __init__(self, redis_port):
        import threading
        self.redis_port = redis_port
        self.down = False
        self._rules = []
        self.injected = []
        self._lock = threading.Lock()
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self.url = "redis://127.0.0.1:%d" % self.port
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def inject(self, pred, reply):
        with self._lock:
            self._rules.append((pred, reply))

    def _accept(self):
        import threading
        while not self._closed:
            try:
                cs, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(cs,), daemon=True).start()

    @staticmethod
    def _read_raw(f):
        """One RESP value, as the bytes it came in; None at EOF."""
        line = f.readline()
        if not line:
            return None
        kind, out = line[:1], [line]
        if kind == b"$":
            n = int(line[1:-2])
            if n >= 0:
                out.append(f.read(n + 2))
        elif kind == b"*":
            for _ in range(max(int(line[1:-2]), 0)):
                v = FaultProxy._read_raw(f)
                if v is None:
                    return None
                out.append(v)
        return b"".join(out)

    @staticmethod
    def _args(raw):
        """The arguments of a command (an array of bulk strings)."""
        args, i = [], raw.index(b"\r\n") + 2
        while i < len(raw):
            j = raw.index(b"\r\n", i)
            n = int(raw[i + 1:j])
            args.append(raw[j + 2:j + 2 + n])
            i = j + 2 + n + 2
        return args

    def _serve(self, cs):
        rs = socket.create_connection(("127.0.0.1", self.redis_port))
        cf, rf = cs.makefile("rb"), rs.makefile("rb")
        try:
            while True:
                raw = self._read_raw(cf)
                if raw is None:
                    return
                args = self._args(raw)
                name = args[0].upper() if args else b""
                if self.down and name not in (b"AUTH", b"CLIENT", b"SCRIPT", b"PING",
                                              b"SELECT"):
                    return
                reply = None
                with self._lock:
                    for k, (pred, rep) in enumerate(self._rules):
                        if pred(args):
                            reply = rep
                            self.injected.append(args)
                            del self._rules[k]
                            break
                if reply is self.LOSE_REPLY:
                    rs.sendall(raw)
                    self._read_raw(rf)
                    return
                if reply is not None:
                    cs.sendall(b"-" + reply.encode() + b"\r\n")
                    continue
                rs.sendall(raw)
                cs.sendall(self._read_raw(rf))
        except (OSError, TypeError):
            return
        finally:
            for s in (cf, rf, cs, rs):
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._closed = True
        self._srv.close()


class RedisError(Exception):
    """An error reply (-ERR ...)."""


class RespClient:
    """A binary-safe Redis connection speaking RESP2 itself (Debian's python3
    has no Redis module, and redis-cli mangles bytes): arguments are str or
    bytes, replies come back as bytes, int, list or None; error replies raise
    RedisError.

        r = rwtest.RespClient(server.port)
        r.command("XADD", "rw:alerts", "*", "rule", "open_relay")
    """

    def __init__(self, port, auth=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        if auth:
            self.command("AUTH", *auth)

    def close(self):
        self.file.close()
        self.sock.close()

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.file.readline()
        if not line:
            raise OSError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise OSError("bad reply from redis: %r" % line)


def tool_env(**extra):
    """Environment for the readers: UTC (times print the same everywhere), and
    no NO_COLOR or REDISCLI_AUTH inherited from whoever runs the tests."""
    env = dict(os.environ)
    for k in ("NO_COLOR", "REDISCLI_AUTH"):
        env.pop(k, None)
    env["TZ"] = "UTC"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_tool(path, args, env=None, timeout=120, input=None):
    """Run a reader to completion; CompletedProcess with bytes stdout/stderr."""
    return subprocess.run([path] + [str(a) for a in args], capture_output=True,
                          env=env if env is not None else tool_env(), timeout=timeout,
                          input=input)


class Background:
    """A program left running (a follower, a live view), its stdout and stderr
    collected by threads. pty=True gives it a terminal (40x120) as stdin and
    stdout, to see what it does for a human; send() types on it. Killed at
    exit if still running."""

    _all = []

    def __init__(self, argv, env=None, pty=False):
        import threading
        self.out, self.err = bytearray(), bytearray()
        self._lock = threading.Lock()
        self.master = None
        if pty:
            import fcntl
            import pty as ptymod
            import struct
            import termios
            self.master, slave = ptymod.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            self.proc = subprocess.Popen([str(a) for a in argv], stdin=slave, stdout=slave,
                                         stderr=subprocess.PIPE, env=env)
            os.close(slave)
            readers = [(self._read_fd, self.master, self.out)]
        else:
            self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            readers = [(self._read_pipe, self.proc.stdout, self.out)]
        readers.append((self._read_pipe, self.proc.stderr, self.err))
        self._threads = [threading.Thread(target=f, args=(src, buf), daemon=True)
                         for f, src, buf in readers]
        for t in self._threads:
            t.start()
        Background._all.append(self)

    def _read_pipe(self, f, buf):
        for chunk in iter(lambda: f.read1(65536), b""):
            with self._lock:
                buf += chunk

    def _read_fd(self, fd, buf):
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:          # EIO: the terminal's last user is gone
                return
            if not chunk:
                return
            with self._lock:
                buf += chunk

    def stdout(self):
        with self._lock:
            return bytes(self.out)

    def stderr(self):
        with self._lock:
            return bytes(self.err)

    def wait_stdout(self, what, pred, timeout=30.0):
        return wait_for(what, lambda: pred(self.stdout()) or self._dead(what), timeout)

    def wait_stderr(self, what, pred, timeout=30.0):
        return wait_for(what, lambda: pred(self.stderr()) or self._dead(what), timeout)

    def _dead(self, what):
        if self.proc.poll() is not None:
            raise AssertionError("exited %d while waiting for %s; stderr:\n%s"
                                 % (self.proc.returncode, what,
                                    self.stderr().decode(errors="replace")))
        return False

    def send(self, data):
        os.write(self.master, data)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        """Exit status, once the output is all read."""
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout)
        if self.master is not None:
            os.close(self.master)
            self.master = None
        return rc

    def state(self):
        """The process state letter from /proc (R, S, T = stopped, ...)."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None

    @classmethod
    def kill_all(cls):
        for b in cls._all:
            if b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait()


atexit.register(Background.kill_all)


def run_rss(args, timeout=600):
    """Run relaywatch with args; returns (returncode, stdout, stderr, peak RSS
    in KiB) as /usr/bin/time measures it. (wait4's ru_maxrss can report the
    Python parent's size, which a child inherits until exec.)"""
    import tempfile as _t
    # meson sets MALLOC_PERTURB_, which writes every malloc'd block and so
    # makes untouched memory (nDPI's large tables) resident: not the
    # program's footprint
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
    with _t.NamedTemporaryFile("r") as tf:
        p = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M", RELAYWATCH]
                           + list(args), capture_output=True, env=env, timeout=timeout)
        rss = int(tf.read().strip().splitlines()[-1])
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"), rss)


def sanitized():
    """True if the binary under test was built with AddressSanitizer: its
    shadow memory makes RSS meaningless as a footprint."""
    with open(RELAYWATCH, "rb") as f:
        return b"AddressSanitizer" in f.read()
