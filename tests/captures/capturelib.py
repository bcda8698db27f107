# Shared helpers for make-captures.sh / make-scenarios.sh.
#
# Everything here drives REAL software over REAL sockets (two network
# namespaces joined by a veth pair, see netns.sh) and records it with the real
# tcpdump:
#   * servers: aiosmtpd 1.4.3 (Debian python3-aiosmtpd) started in-process via
#     its Controller, or an external private Postfix instance;
#   * clients: Python smtplib, swaks, or a raw TCP socket client (used where the
#     exact TCP segmentation / command bytes matter);
#   * capture: tcpdump -i veth-mx (or -i any / dumpcap) --immediate-mode -U in
#     the server namespace, stopped with SIGINT after the TCP teardown.
#
# Must run as root with /usr/bin/python3 (Debian python with aiosmtpd + scapy).

import base64
import hmac
import os
import re
import signal
import socket
import smtplib
import ssl
import subprocess
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

import logging
import warnings
warnings.filterwarnings('ignore', category=DeprecationWarning)
logging.getLogger('mail.log').setLevel(logging.ERROR)   # aiosmtpd login_data nag

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------ network namespaces ---
#
# make-captures.sh builds two namespaces joined by a veth pair:
#   SRV_NS  "rw-srv": the mail server side (10.1.0.25, 2001:db8:1::25); the
#           captures are taken on its veth (like a sensor on the MX's port);
#   CLI_NS  "rw-cli": every client address.
# Checksum/segmentation offloads are off on both veth ends, so the captured
# frames are <=1514 bytes with valid IP/TCP checksums and real MAC addresses.
# A thread can switch namespace with setns(2); sockets keep the namespace they
# were created in, threads/processes inherit it from the creating thread.

import contextlib
import ctypes

SRV_NS = os.environ.get('RW_SRV_NS', 'rw-srv')
CLI_NS = os.environ.get('RW_CLI_NS', 'rw-cli')
CAP_IF = os.environ.get('RW_CAP_IF', 'veth-mx')
_libc = ctypes.CDLL(None, use_errno=True)


def _setns_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, 0x40000000) != 0:     # CLONE_NEWNET
            e = ctypes.get_errno()
            raise OSError(e, 'setns(%s): %s' % (path, os.strerror(e)))
    finally:
        os.close(fd)


@contextlib.contextmanager
def in_netns(name):
    """Run the body (and anything it starts) in network namespace NAME."""
    back = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        _setns_path('/run/netns/' + name)
        yield
    finally:
        if _libc.setns(back, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), 'setns back')
        os.close(back)


def enter_client_ns():
    _setns_path('/run/netns/' + CLI_NS)


# ---------------------------------------------------------------- tcpdump ---

class Capture:
    """Run one or more capture processes at once on the same traffic (several
    link types / file formats).  specs: list of (path, iface, extra_args[, tool])
    with tool 'tcpdump' (default) or 'dumpcap' (Wireshark's live capture
    engine, writes pcapng; used because tcpdump 4.99.3 has no --pcapng)."""

    def __init__(self, specs, bpf):
        self.procs = []
        try:
            for spec in specs:
                path, iface, extra = spec[:3]
                tool = spec[3] if len(spec) > 3 else 'tcpdump'
                if os.path.exists(path):
                    os.unlink(path)
                if tool == 'tcpdump':
                    # -B: big ring buffer; with --immediate-mode libpcap uses
                    # one ring frame per snaplen, and on "any" (no MTU to clamp
                    # to) -s 0 would leave only ~7 frames -> kernel drops.
                    snap = '65535' if iface == 'any' else '0'
                    cmd = ['tcpdump', '-i', iface, '--immediate-mode', '-U', '-B', '65536',
                           '-s', snap, '-n', *extra, '-w', path, bpf]
                    ready = b'listening on'
                else:
                    cmd = ['dumpcap', '-i', iface, '-f', bpf, '-q', *extra, '-w', path]
                    ready = b'File:'
                with in_netns(SRV_NS):
                    p = subprocess.Popen(cmd, stderr=subprocess.PIPE)
                self.procs.append((path, p))
                # wait until the device is open and the filter installed
                while True:
                    line = p.stderr.readline()
                    if not line:
                        raise RuntimeError('capture failed: %r' % cmd)
                    if ready in line:
                        break
            time.sleep(0.3)
        except BaseException:
            for _, p in self.procs:
                p.kill()
                p.wait()
            raise

    def stop(self):
        time.sleep(0.6)     # let the last ACKs hit the ring buffer
        for path, p in self.procs:
            p.send_signal(signal.SIGINT)
        for path, p in self.procs:
            err = p.stderr.read().decode(errors='replace')
            p.wait()
            m = re.search(r'(\d+) packets dropped by kernel', err)
            if (m and m.group(1) != '0') or re.search(r'dumpcap:[1-9]|\(pcap:[1-9]', err):
                raise RuntimeError('capture dropped packets: %s %s' % (path, err))
            # tcpdump drops privileges to user tcpdump; hand the file back
            os.chown(path, 0, 0)
            os.chmod(path, 0o644)
            log('  wrote', os.path.relpath(path), os.path.getsize(path), 'bytes')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def cap(path, bpf):
    return Capture([(path, CAP_IF, [])], bpf)


def wait_port_free(ip, port, timeout=75):
    """A fixed client port can still be in TIME_WAIT from a previous run."""
    t0 = time.time()
    while True:
        out = subprocess.run(['ss', '-Htan', 'sport', '= :%d' % port],
                             capture_output=True, text=True).stdout
        busy = [l for l in out.splitlines() if ip in l]
        if not busy:
            return
        if time.time() - t0 > timeout:
            raise RuntimeError('port %s:%d still busy: %s' % (ip, port, busy))
        time.sleep(1)


# ------------------------------------------------------------- aiosmtpd ----

class RWSMTP(SMTP):
    # the common "Username:" / "Password:" prompts (VXNlcm5hbWU6 / UGFzc3dvcmQ6)
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class RWController(Controller):
    def factory(self):
        return RWSMTP(self.handler, **self.SMTP_kwargs)


CRAM_CHALLENGE = b'<1896.697170952@mx.pref.example.jp>'   # fixed -> reproducible


class Handler:
    """aiosmtpd handler.

    accounts: {login: password} for AUTH; relay_ok(addr) -> bool decides if a
    recipient is accepted; reject: {rcpt: reply} explicit per-recipient replies.
    The queue id in the final 250 is a counter -> deterministic replies."""

    def __init__(self, accounts=None, reject=None, qprefix='4F', relay_ok=None,
                 mail_reply='250 2.1.0 Ok', rcpt_reply='250 2.1.5 Ok'):
        self.accounts = accounts or {}
        self.reject = reject or {}
        self.qprefix = qprefix
        self.relay_ok = relay_ok
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.n = 0
        self.messages = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # aiosmtpd reads commands line by line, so it copes with pipelining;
        # advertise it like a typical MTA does.
        return responses[:1] + ['250-PIPELINING'] + responses[1:-1] + \
            ['250-ENHANCEDSTATUSCODES', '250 HELP']

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return self.mail_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        a = address.strip('<>')
        if a in self.reject:
            return self.reject[a]
        if self.relay_ok is not None and not self.relay_ok(session, a):
            return '554 5.7.1 <%s>: Relay access denied' % a
        envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content or envelope.content))
        return '250 2.0.0 Ok: queued as %s%08X' % (self.qprefix, 0x1000 * self.n + 0x25)

    # authenticator(server, session, envelope, mechanism, auth_data)
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            pw = auth_data.password.decode()
            ok = self.accounts.get(login) == pw
            return AuthResult(success=ok, handled=False, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    # extra mechanisms (aiosmtpd maps auth_CRAM__MD5 -> "CRAM-MD5")
    async def auth_CRAM__MD5(self, server, args):
        if len(args) != 1:
            await server.push('501 5.5.4 Syntax: AUTH CRAM-MD5')
            return AuthResult(success=False, handled=True)
        resp = await server.challenge_auth(CRAM_CHALLENGE)
        if not isinstance(resp, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = resp.decode().rpartition(' ')
        pw = self.accounts.get(user)
        if pw is None:
            return AuthResult(success=False)
        want = hmac.new(pw.encode(), CRAM_CHALLENGE, 'md5').hexdigest()
        if hmac.compare_digest(want, digest):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b''))
        return AuthResult(success=False)

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            raw = base64.b64decode(args[1])
        else:
            raw = await server.challenge_auth(b'')
            if not isinstance(raw, bytes):
                return AuthResult(success=False, handled=True)
        fields = dict(f.split('=', 1) for f in raw.decode().split('\x01') if '=' in f)
        user = fields.get('user', '')
        tok = fields.get('auth', '')
        if tok == 'Bearer ' + self.accounts.get('xoauth2:' + user, '\0'):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b''))
        return AuthResult(success=False)


def start_server(handler, ip, port, hostname='mx.pref.example.jp', auth=False,
                 tls_context=None, implicit_tls=None, auth_require_tls=False,
                 exclude_mech=None):
    kw = dict(hostname=ip, port=port, server_hostname=hostname, ident='ESMTP',
              data_size_limit=33554432, enable_SMTPUTF8=False)
    if auth:
        kw['authenticator'] = handler.authenticator
        kw['auth_require_tls'] = auth_require_tls
        if exclude_mech:
            kw['auth_exclude_mechanism'] = exclude_mech
    else:
        # no AUTH offered at all (aiosmtpd only advertises AUTH when
        # auth_require_tls is False or the session is already under TLS)
        kw['auth_require_tls'] = True
        kw['auth_exclude_mechanism'] = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2']
    if tls_context is not None:
        kw['tls_context'] = tls_context
    if implicit_tls is not None:
        kw['ssl_context'] = implicit_tls
    c = RWController(handler, **kw)
    with in_netns(SRV_NS):
        c.start()           # its thread and listening socket live in SRV_NS
    return c


def server_tls_context(certdir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, 'mx.crt'), os.path.join(certdir, 'mx.key'))
    return ctx


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- clients ---

def smtp_connect(server, port, src, sport, helo, cls=smtplib.SMTP, **kw):
    """smtplib client bound to a fixed source address/port."""
    fam_ip = src
    wait_port_free(fam_ip, sport)
    s = cls(server, port, local_hostname=helo, source_address=(src, sport),
            timeout=15, **kw)
    return s


def smtp_quit(s):
    """QUIT, then wait for the server's FIN before closing our side, so the
    server closes first (as Postfix and aiosmtpd do) and no client TIME_WAIT
    blocks the fixed source port on the next run."""
    code, msg = s.docmd('QUIT')
    assert code == 221, (code, msg)
    sock = s.sock
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    s.close()
    time.sleep(0.05)


class RawClient:
    """Byte-exact SMTP client on a plain TCP socket.  Every send() is one
    write() with TCP_NODELAY, so each call becomes (at least) one segment;
    pause() between sends keeps the kernel from coalescing them."""

    def __init__(self, server, port, src, sport, family=socket.AF_INET):
        wait_port_free(src, sport)
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.bind((src, sport))
        self.s.connect((server, port))
        self.s.settimeout(15)
        self.buf = b''
        self.replies = []

    def send(self, data, gap=0.03):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)
        if gap:
            time.sleep(gap)     # wait for the ACK -> next write is a new segment

    def reply(self):
        """Read one complete (possibly multi-line) reply; return (code, lines)."""
        lines = []
        while True:
            while b'\r\n' not in self.buf:
                d = self.s.recv(65536)
                if not d:
                    raise EOFError('server closed; got %r' % lines)
                self.buf += d
            line, self.buf = self.buf.split(b'\r\n', 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b'-':
                break
        code = int(lines[-1][:3])
        self.replies.append(lines)
        return code, lines

    def cmd(self, line, expect=None):
        self.send(line + '\r\n', gap=0)
        code, lines = self.reply()
        if expect is not None and code != expect:
            raise RuntimeError('%r -> %r' % (line, lines))
        return code, lines

    def quit(self):
        self.cmd('QUIT', 221)
        try:
            while self.s.recv(4096):
                pass
        except OSError:
            pass
        self.s.close()
        time.sleep(0.05)


def swaks(*args, check=True):
    cmd = ['swaks', '--silent', '2', *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError('swaks failed (%d): %s\n%s' % (r.returncode, cmd, r.stdout + r.stderr))
    time.sleep(0.3)
    return r


# --------------------------------------------------------------- messages ---

def crlf(text):
    """Message text written with \\n -> wire form with CRLF (str or bytes)."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    return text.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')


def b64w(text, charset):
    """One RFC 2047 B encoded-word, charset name written exactly as given."""
    enc = {'ISO-2022-JP': 'iso2022_jp', 'iso-2022-jp': 'iso2022_jp',
           'Shift_JIS': 'shift_jis', 'EUC-JP': 'euc_jp'}.get(charset, charset)
    return '=?%s?B?%s?=' % (charset, base64.b64encode(text.encode(enc)).decode())


# ---------------------------------------------------------------- postfix ---

class Postfix:
    """A private Postfix 3.x instance (own config/queue dirs under /tmp) that
    discards everything it accepts.  Used where a real MTA feature is needed
    that aiosmtpd lacks (CHUNKING/BDAT) and for Postfix's own replies."""

    def __init__(self, ip='10.1.0.25', hostname='mx.pref.example.jp',
                 mynetworks='127.0.0.0/8 10.1.0.0/16 192.0.2.0/24'):
        import tempfile
        self.ip = ip
        self.dir = tempfile.mkdtemp(prefix='rw-postfix-')
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, 'etc')
        os.makedirs(self.etc)
        for d in ('spool', 'data'):
            os.makedirs(os.path.join(self.dir, d))
        subprocess.run(['chown', 'postfix', os.path.join(self.dir, 'data')], check=True)
        main = f"""compatibility_level = 3.6
queue_directory = {self.dir}/spool
data_directory = {self.dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {self.dir}
maillog_file = {self.dir}/maillog
myhostname = {hostname}
mydomain = pref.example.jp
myorigin = $mydomain
mydestination = $mydomain
inet_interfaces = {ip}
inet_protocols = ipv4
mynetworks = {mynetworks}
smtpd_banner = $myhostname ESMTP Postfix
smtpd_peername_lookup = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard
local_transport = discard
relay_transport = discard
virtual_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
"""
        with open(os.path.join(self.etc, 'main.cf'), 'w') as f:
            f.write(main)
        out = []
        skip = False
        for line in open('/etc/postfix/master.cf'):
            if line.startswith('#') or not line.strip():
                continue
            if line[0] in ' \t':
                if not skip:
                    out.append(line)
                continue
            f = line.split()
            skip = f[-1] == 'pipe'
            if skip:
                continue
            if f[0] == 'smtp' and f[1] == 'inet':
                f[0] = '%s:25' % ip
            if len(f) >= 8 and f[4] == 'y':
                f[4] = 'n'          # no chroot
            out.append(' '.join(f[:8]) + (' ' + ' '.join(f[8:]) if f[8:] else '') + '\n')
        with open(os.path.join(self.etc, 'master.cf'), 'w') as f:
            f.writelines(out)

    def _pf(self, *args):
        with in_netns(SRV_NS):
            return subprocess.run(['postfix', '-c', self.etc, *args], capture_output=True, text=True)

    def _listening(self):
        with in_netns(SRV_NS):
            out = subprocess.run(['ss', '-Hltn', 'sport', '= :25'], capture_output=True, text=True).stdout
        return self.ip in out

    def start(self):
        self._pf('check')
        r = self._pf('start')
        for _ in range(50):
            if self._listening():
                time.sleep(0.5)
                return self
            time.sleep(0.1)
        raise RuntimeError('postfix did not start: %s %s\n%s' % (
            r.stdout, r.stderr, open(os.path.join(self.dir, 'maillog')).read()
            if os.path.exists(os.path.join(self.dir, 'maillog')) else ''))

    def stop(self):
        import shutil
        self._pf('stop')
        for _ in range(50):
            if not self._listening():
                break
            time.sleep(0.1)
        time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False
