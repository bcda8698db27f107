#!/usr/bin/python3
# Live part of make-captures.sh: runs real SMTP servers (namespace rw-srv) and
# real clients (namespace rw-cli) and records each session with tcpdump on the
# server's veth interface.
#
#   /usr/bin/python3 gen_captures.py [NAME ...]      (default: all)
#
# Needs: root, the namespaces made by netns.sh,
# CERTDIR=<dir with mx.crt/mx.key> for the TLS captures.
# Every message below is fixed text; client ports are fixed too, so a
# regeneration reproduces the same bytes except TCP ISNs/timestamps, TLS
# records and Postfix queue ids.

import base64
import io
import os
import smtplib
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capturelib import (CAP_IF, HERE, Capture, Handler, Postfix, RawClient, b64w,
                        cap, client_tls_context, crlf, enter_client_ns, log,
                        server_tls_context, smtp_connect, smtp_quit, start_server,
                        swaks)

MX = '10.1.0.25'
MX6 = '2001:db8:1::25'
MXNAME = 'mx.pref.example.jp'
OUT = os.environ.get('OUT', HERE)
CERTDIR = os.environ.get('CERTDIR', '')


def out(name):
    return os.path.join(OUT, name)


def bpf(port, host=MX):
    return 'tcp port %d and host %s' % (port, host)


CAPTURES = {}


def capture(fn):
    CAPTURES[fn.__name__.replace('_', '-')] = fn
    return fn


def send(s, mailfrom, rcpts, msg):
    """smtplib transaction; returns the refused-recipient dict."""
    return s.sendmail(mailfrom, rcpts, crlf(msg))


# ------------------------------------------------------------------ basic ---

BASIC_MSG = """Date: Mon, 06 Oct 2025 10:00:00 +0900
From: Example Net Info <info@example.net>
To: koho@pref.example.jp
Subject: Basic session test
Message-ID: <basic-0001@mta1.example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello,

this message is the baseline capture of the relaywatch test suite.  It is a
plain, unauthenticated MTA-to-MX session on port 25 with one recipient.  The
same session is recorded with several link types (Ethernet on lo, Linux SLL,
Linux SLL2, pcapng) and rewritten into raw-IP, BSD-loopback, 802.1Q and
802.1ad/QinQ captures, and one IPv4 packet of it is fragmented.

The body is long enough (well over 552 octets) that the single DATA segment
can be split into three IPv4 fragments at a 576-byte path MTU.

Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod
tempor incididunt ut labore et dolore magna aliqua.  Ut enim ad minim
veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea
commodo consequat.

-- 
info@example.net
"""


@capture
def basic():
    """One session seen by four tcpdumps at once."""
    h = Handler(qprefix='4B')
    srv = start_server(h, MX, 25)
    try:
        c = Capture([(out('basic.pcap'), CAP_IF, []),
                     (out('pcapng-basic.pcapng'), CAP_IF, [], 'dumpcap'),
                     (out('linktype-sll.pcap'), 'any', ['-y', 'LINUX_SLL']),
                     (out('linktype-sll2.pcap'), 'any', ['-y', 'LINUX_SLL2'])],
                    bpf(25))
        with c:
            s = smtp_connect(MX, 25, '192.0.2.10', 40100, 'mta1.example.net')
            send(s, 'info@example.net', ['koho@pref.example.jp'], BASIC_MSG)
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def checksum_offload():
    """Same kind of session, but with TX checksum offload switched ON on both
    veth ends for the duration: the TCP checksums in the capture are then
    not filled in, as in any capture taken on a sending host."""
    import subprocess
    from capturelib import CLI_NS, SRV_NS, in_netns

    def offload(state):
        with in_netns(SRV_NS):
            subprocess.run(['ethtool', '-K', 'veth-mx', 'tx', state], check=True,
                           capture_output=True)
        subprocess.run(['ethtool', '-K', 'veth-net', 'tx', state], check=True,
                       capture_output=True)

    h = Handler(qprefix='4C')
    srv = start_server(h, MX, 25)
    offload('on')
    try:
        with cap(out('checksum-offload.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, '192.0.2.15', 40150, 'mta15.example.net')
            send(s, 'offload@example.net', ['koho@pref.example.jp'], simple_msg(
                'Offload Test <offload@example.net>', 'koho@pref.example.jp',
                'Checksums left to the NIC', '<offload-0001@mta15.example.net>',
                'The TCP checksums of this capture are not valid (checksum offload).'))
            smtp_quit(s)
    finally:
        offload('off')
        srv.stop()


# ------------------------------------------------------------------- AUTH ---

ACCOUNTS = {
    'tanaka@pref.example.jp': 'Pa55-gold-PLAIN-7d1',
    'sato@pref.example.jp': 'Pa55-silver-PLAINcont-3e2',
    'yamada@pref.example.jp': 'Pa55-login-INIT-8c3',
    'kimura@pref.example.jp': 'Pa55-login-BARE-6e5',
    'ito@pref.example.jp': 'Pa55-cram-MD5-9f4',
    'xoauth2:watanabe@pref.example.jp': 'ya29.Tok-XOAUTH2-secret-5b7',
    'kobayashi@pref.example.jp': 'Pa55-right-FAIL-2b8',
    'nakamura@pref.example.jp': 'Pa55-tls-HIDDEN-4c6',
    'ogawa@pref.example.jp': 'Pa55-smtps-HIDDEN-0d2',
}


def simple_msg(frm, to, subject, msgid, body, date='Mon, 06 Oct 2025 11:00:00 +0900'):
    return ("Date: %s\nFrom: %s\nTo: %s\nSubject: %s\nMessage-ID: %s\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n%s\n"
            % (date, frm, to, subject, msgid, body))


def auth_server(qprefix):
    h = Handler(accounts=ACCOUNTS, qprefix=qprefix)
    return h, start_server(h, MX, 587, auth=True)


@capture
def auth_plain():
    h, srv = auth_server('5A')
    try:
        with cap(out('auth-plain.pcap'), bpf(587)):
            # session 1: AUTH PLAIN with initial response
            s = smtp_connect(MX, 587, '10.1.2.11', 40201, 'ws11.pref.example.jp')
            s.ehlo()
            s.user, s.password = 'tanaka@pref.example.jp', 'Pa55-gold-PLAIN-7d1'
            s.auth('PLAIN', s.auth_plain, initial_response_ok=True)
            send(s, 'tanaka@pref.example.jp', ['suzuki@example.co.jp'], simple_msg(
                'Tanaka Ichiro <tanaka@pref.example.jp>', 'suzuki@example.co.jp',
                'Meeting minutes 2025-10-06', '<auth-plain-0001@pref.example.jp>',
                'Please find the minutes below.'))
            smtp_quit(s)
            # session 2: bare "AUTH PLAIN", credentials after the 334
            s = smtp_connect(MX, 587, '10.1.2.12', 40202, 'ws12.pref.example.jp')
            s.ehlo()
            s.user, s.password = 'sato@pref.example.jp', 'Pa55-silver-PLAINcont-3e2'
            s.auth('PLAIN', s.auth_plain, initial_response_ok=False)
            send(s, 'sato@pref.example.jp', ['kato@example.com', 'mori@example.org'], simple_msg(
                'Sato Jiro <sato@pref.example.jp>', 'kato@example.com, mori@example.org',
                'Budget draft v2', '<auth-plain-0002@pref.example.jp>',
                'The second draft of the budget is attached in the shared folder.'))
            smtp_quit(s)
    finally:
        srv.stop()


def write_msgfile(name, text):
    path = os.path.join(OUT, '.tmp-' + name)
    with open(path, 'wb') as f:
        f.write(text.encode() if isinstance(text, str) else text)
    return path


@capture
def auth_login():
    h, srv = auth_server('5B')
    try:
        with cap(out('auth-login.pcap'), bpf(587)):
            # session 1 (smtplib): AUTH LOGIN <b64 user> -> 334 Password: -> pass
            s = smtp_connect(MX, 587, '10.1.2.13', 40301, 'ws13.pref.example.jp')
            s.ehlo()
            s.user, s.password = 'yamada@pref.example.jp', 'Pa55-login-INIT-8c3'
            s.auth('LOGIN', s.auth_login, initial_response_ok=True)
            send(s, 'yamada@pref.example.jp', ['honda@example.net'], simple_msg(
                'Yamada Hanako <yamada@pref.example.jp>', 'honda@example.net',
                'Site visit schedule', '<auth-login-0001@pref.example.jp>',
                'The site visit is scheduled for Thursday.'))
            smtp_quit(s)
            # session 2 (swaks): bare AUTH LOGIN -> 334 Username: -> 334 Password:
            f = write_msgfile('auth-login-2', simple_msg(
                'Kimura Saburo <kimura@pref.example.jp>', 'ueda@example.jp',
                'Road closure notice', '<auth-login-0002@pref.example.jp>',
                'Route 12 will be closed on Saturday.'))
            swaks('--server', MX, '--port', '587', '--local-interface', '10.1.2.14',
                  '--local-port', '40302', '--helo', 'ws14.pref.example.jp',
                  '--auth', 'LOGIN', '--auth-user', 'kimura@pref.example.jp',
                  '--auth-password', 'Pa55-login-BARE-6e5',
                  '--from', 'kimura@pref.example.jp', '--to', 'ueda@example.jp',
                  '--data', '@' + f)
            os.unlink(f)
    finally:
        srv.stop()


@capture
def auth_cram_md5():
    h, srv = auth_server('5C')
    try:
        with cap(out('auth-cram-md5.pcap'), bpf(587)):
            s = smtp_connect(MX, 587, '10.1.2.16', 40401, 'ws16.pref.example.jp')
            s.ehlo()
            s.user, s.password = 'ito@pref.example.jp', 'Pa55-cram-MD5-9f4'
            s.auth('CRAM-MD5', s.auth_cram_md5, initial_response_ok=False)
            send(s, 'ito@pref.example.jp', ['abe@example.com'], simple_msg(
                'Ito Shiro <ito@pref.example.jp>', 'abe@example.com',
                'Equipment inventory', '<auth-cram-0001@pref.example.jp>',
                'The inventory list has been updated.'))
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def auth_xoauth2():
    h, srv = auth_server('5D')
    try:
        with cap(out('auth-xoauth2.pcap'), bpf(587)):
            s = smtp_connect(MX, 587, '10.1.2.17', 40501, 'ws17.pref.example.jp')
            s.ehlo()
            tok = 'user=watanabe@pref.example.jp\x01auth=Bearer ya29.Tok-XOAUTH2-secret-5b7\x01\x01'
            s.auth('XOAUTH2', lambda challenge=None: tok, initial_response_ok=True)
            send(s, 'watanabe@pref.example.jp', ['okada@example.org'], simple_msg(
                'Watanabe Goro <watanabe@pref.example.jp>', 'okada@example.org',
                'Training materials', '<auth-xoauth2-0001@pref.example.jp>',
                'The training slides are ready.'))
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def auth_fail():
    h, srv = auth_server('5E')
    try:
        with cap(out('auth-fail.pcap'), bpf(587)):
            s = smtp_connect(MX, 587, '10.1.2.18', 40601, 'ws18.pref.example.jp')
            s.ehlo()
            s.user, s.password = 'kobayashi@pref.example.jp', 'Wr0ng-pass-FAIL-1a9'
            try:
                s.auth('PLAIN', s.auth_plain, initial_response_ok=True)
                raise RuntimeError('wrong password accepted?')
            except smtplib.SMTPAuthenticationError as e:
                assert e.smtp_code == 535
            s.user, s.password = 'kobayashi@pref.example.jp', 'Pa55-right-FAIL-2b8'
            s.auth('LOGIN', s.auth_login, initial_response_ok=True)
            send(s, 'kobayashi@pref.example.jp', ['fujita@example.net'], simple_msg(
                'Kobayashi Rokuro <kobayashi@pref.example.jp>', 'fujita@example.net',
                'Password finally right', '<auth-fail-0001@pref.example.jp>',
                'First AUTH attempt failed with 535, the second one succeeded.'))
            smtp_quit(s)
    finally:
        srv.stop()


# ----------------------------------------------------------- Postfix ones ---

@capture
def pipelining():
    f = write_msgfile('pipelining', simple_msg(
        'Newsletter <news@example.net>', 'koho@pref.example.jp, bosai@pref.example.jp',
        'Pipelined delivery', '<pipelining-0001@mta2.example.net>',
        'MAIL, both RCPTs and DATA went out in one TCP segment.'))
    try:
        with Postfix(MX):
            with cap(out('pipelining.pcap'), bpf(25)):
                swaks('--server', MX, '--port', '25', '--local-interface', '192.0.2.11',
                      '--local-port', '40701', '--helo', 'mta2.example.net', '--pipeline',
                      '--from', 'news@example.net',
                      '--to', 'koho@pref.example.jp,bosai@pref.example.jp',
                      '--data', '@' + f)
    finally:
        os.unlink(f)


BDAT_MSG1 = crlf("""Date: Mon, 06 Oct 2025 12:00:00 +0900
From: Reports <reports@example.net>
To: koho@pref.example.jp
Subject: BDAT chunked message one
Message-ID: <bdat-0001@mta3.example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

First message, sent as BDAT 128 + BDAT n LAST.
.
.this line starts with a dot and is NOT dot-stuffed (BDAT is binary-clean)
Last line.
""")

BDAT_MSG2 = crlf("""Date: Mon, 06 Oct 2025 12:01:00 +0900
From: Reports <reports@example.net>
To: koho@pref.example.jp, bosai@pref.example.jp
Subject: BDAT chunked message two
Message-ID: <bdat-0002@mta3.example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Second message: two data chunks, then an empty BDAT 0 LAST.
""")


@capture
def bdat():
    with Postfix(MX):
        with cap(out('bdat.pcap'), bpf(25)):
            c = RawClient(MX, 25, '192.0.2.13', 40901)
            c.reply()
            c.cmd('EHLO mta3.example.net', 250)
            # transaction 1: BDAT 128 (chunk ends inside the Subject header) + BDAT n LAST
            c.cmd('MAIL FROM:<reports@example.net>', 250)
            c.cmd('RCPT TO:<koho@pref.example.jp>', 250)
            a, b = BDAT_MSG1[:128], BDAT_MSG1[128:]
            c.send(b'BDAT %d\r\n' % len(a) + a, gap=0)
            assert c.reply()[0] == 250
            c.send(b'BDAT %d LAST\r\n' % len(b) + b, gap=0)
            assert c.reply()[0] == 250
            # transaction 2: BDAT n, BDAT n, BDAT 0 LAST
            c.cmd('MAIL FROM:<reports@example.net>', 250)
            c.cmd('RCPT TO:<koho@pref.example.jp>', 250)
            c.cmd('RCPT TO:<bosai@pref.example.jp>', 250)
            half = 200
            a, b = BDAT_MSG2[:half], BDAT_MSG2[half:]
            c.send(b'BDAT %d\r\n' % len(a) + a, gap=0)
            assert c.reply()[0] == 250
            c.send(b'BDAT %d\r\n' % len(b) + b, gap=0)
            assert c.reply()[0] == 250
            c.cmd('BDAT 0 LAST', 250)
            c.quit()
            log('  bdat replies:', c.replies)


@capture
def relay_denied():
    with Postfix(MX):
        with cap(out('relay-denied.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, '203.0.113.9', 41901, 'mail.badhost.example')
            # transaction 1: every recipient refused -> smtplib sends RSET
            try:
                send(s, 'promo@badhost.example', ['victim1@example.com', 'victim2@example.org'],
                     simple_msg('Promo <promo@badhost.example>', 'victim1@example.com',
                                'You won!', '<relay-0001@badhost.example>', 'Click here.'))
                raise RuntimeError('relay accepted?')
            except smtplib.SMTPRecipientsRefused:
                pass
            # transaction 2: one foreign recipient refused, the local one accepted
            refused = send(s, 'promo@badhost.example', ['victim3@example.net', 'koho@pref.example.jp'],
                           simple_msg('Promo <promo@badhost.example>', 'koho@pref.example.jp',
                                      'You won again!', '<relay-0002@badhost.example>',
                                      'Click here too.'))
            assert list(refused) == ['victim3@example.net'], refused
            smtp_quit(s)


# ----------------------------------------------------------- transactions ---

@capture
def multi_transaction():
    h = Handler(qprefix='6A')
    srv = start_server(h, MX, 25)
    try:
        with cap(out('multi-transaction.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, '192.0.2.12', 40801, 'mta4.example.net')
            send(s, 'alerts@example.net', ['koho@pref.example.jp'], simple_msg(
                'Alerts <alerts@example.net>', 'koho@pref.example.jp', 'Transaction one',
                '<multi-0001@mta4.example.net>', 'First message of the session.'))
            # aborted transaction: MAIL + RCPT, then RSET
            s.ehlo_or_helo_if_needed()
            assert s.mail('alerts@example.net')[0] == 250
            assert s.rcpt('soumu@pref.example.jp')[0] == 250
            assert s.rset()[0] == 250
            send(s, 'alerts@example.net', ['koho@pref.example.jp', 'bosai@pref.example.jp'], simple_msg(
                'Alerts <alerts@example.net>', 'koho@pref.example.jp, bosai@pref.example.jp',
                'Transaction two', '<multi-0002@mta4.example.net>',
                'Second completed message; an aborted MAIL/RCPT/RSET came before it.'))
            send(s, '', ['koho@pref.example.jp'], simple_msg(
                'Mail Delivery System <MAILER-DAEMON@mta4.example.net>', 'koho@pref.example.jp',
                'Undelivered Mail Returned to Sender', '<multi-0003@mta4.example.net>',
                'A bounce: the envelope sender is the null path <>.'))
            smtp_quit(s)
    finally:
        srv.stop()


TWO_MSGS = [
    ('notice@example.org', ['koho@pref.example.jp'], simple_msg(
        'Notice <notice@example.org>', 'koho@pref.example.jp', 'First of two messages',
        '<two-0001@mta5.example.org>', 'Message number one.\n' + 'filler line for size\n' * 20)),
    ('notice@example.org', ['koho@pref.example.jp', 'soumu@pref.example.jp'], simple_msg(
        'Notice <notice@example.org>', 'koho@pref.example.jp, soumu@pref.example.jp',
        'Second of two messages', '<two-0002@mta5.example.org>',
        'Message number two.\n' + 'more filler for the second message\n' * 20)),
]


@capture
def two_messages():
    """Source for one-direction.pcap and truncated.pcap."""
    h = Handler(qprefix='6B')
    srv = start_server(h, MX, 25)
    try:
        with cap(out('two-messages.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, '192.0.2.28', 42101, 'mta5.example.org')
            for m in TWO_MSGS:
                send(s, *m)
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def big_recipients():
    doms = ['example.com', 'example.net', 'example.org', 'mail.example.co.jp',
            'example.ne.jp', 'pref.example.jp']
    rcpts = ['member%03d@%s' % (i, doms[i % len(doms)]) for i in range(1, 151)]
    rejected = {r: '550 5.1.1 <%s>: Recipient address rejected: User unknown' % r
                for r in (rcpts[12], rcpts[76], rcpts[139])}
    h = Handler(qprefix='6C', reject=rejected)
    srv = start_server(h, MX, 25)
    try:
        with cap(out('big-recipients.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, '192.0.2.27', 41801, 'bulk.example.org')
            refused = send(s, 'bulk@example.org', rcpts, simple_msg(
                'Mass Sender <bulk@example.org>', 'undisclosed-recipients:;',
                'Announcement to 150 recipients', '<big-0001@bulk.example.org>',
                'One message, 150 RCPT TO commands, 3 of them refused with 550.'))
            assert sorted(refused) == sorted(rejected), refused
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def ipv6():
    h = Handler(qprefix='6D')
    srv = start_server(h, MX6, 25)
    try:
        with cap(out('ipv6.pcap'), bpf(25, MX6)):
            s = smtp_connect(MX6, 25, '2001:db8:2::15', 42001, 'mta6.example.net')
            send(s, 'ipv6@example.net', ['koho@pref.example.jp'], simple_msg(
                'IPv6 Sender <ipv6@example.net>', 'koho@pref.example.jp',
                'Delivered over IPv6', '<ipv6-0001@mta6.example.net>',
                'This session ran from [2001:db8:2::15] to [2001:db8:1::25]:25.'))
            smtp_quit(s)
    finally:
        srv.stop()


# -------------------------------------------------------------------- TLS ---

@capture
def starttls():
    ctx = server_tls_context(CERTDIR)
    h = Handler(accounts=ACCOUNTS, qprefix='7A')
    srv = start_server(h, MX, 587, auth=True, tls_context=ctx, auth_require_tls=True)
    f = write_msgfile('starttls', simple_msg(
        'Nakamura Shichiro <nakamura@pref.example.jp>', 'hayashi@example.com',
        'Sent inside STARTTLS', '<starttls-0001@pref.example.jp>',
        'Envelope, AUTH and message are all inside TLS.'))
    try:
        with cap(out('starttls.pcap'), bpf(587)):
            swaks('--server', MX, '--port', '587', '--local-interface', '10.1.2.19',
                  '--local-port', '41001', '--helo', 'ws19.pref.example.jp', '--tls',
                  '--auth', 'PLAIN', '--auth-user', 'nakamura@pref.example.jp',
                  '--auth-password', 'Pa55-tls-HIDDEN-4c6',
                  '--from', 'nakamura@pref.example.jp', '--to', 'hayashi@example.com',
                  '--data', '@' + f)
    finally:
        os.unlink(f)
        srv.stop()


@capture
def smtps():
    ctx = server_tls_context(CERTDIR)
    h = Handler(accounts=ACCOUNTS, qprefix='7B')
    srv = start_server(h, MX, 465, auth=True, implicit_tls=ctx, auth_require_tls=False)
    try:
        with cap(out('smtps.pcap'), bpf(465)):
            s = smtp_connect(MX, 465, '10.1.2.20', 41101, 'ws20.pref.example.jp',
                             cls=smtplib.SMTP_SSL, context=client_tls_context())
            s.login('ogawa@pref.example.jp', 'Pa55-smtps-HIDDEN-0d2')
            send(s, 'ogawa@pref.example.jp', ['shimizu@example.net'], simple_msg(
                'Ogawa Hachiro <ogawa@pref.example.jp>', 'shimizu@example.net',
                'Sent over implicit TLS', '<smtps-0001@pref.example.jp>',
                'Port 465: TLS from the first byte.'))
            smtp_quit(s)
    finally:
        srv.stop()


# --------------------------------------------------------------- subjects ---

def mta_session(name, ip, sport, helo, msgs, qprefix):
    h = Handler(qprefix=qprefix)
    srv = start_server(h, MX, 25)
    try:
        with cap(out(name + '.pcap'), bpf(25)):
            s = smtp_connect(MX, 25, ip, sport, helo)
            for mailfrom, rcpts, msg in msgs:
                send(s, mailfrom, rcpts, msg)
            smtp_quit(s)
    finally:
        srv.stop()


@capture
def subject_iso2022jp():
    msg = ("Date: Tue, 07 Oct 2025 09:30:00 +0900\n"
           "From: %s <yamamoto@example.co.jp>\n"
           "To: %s <koho@pref.example.jp>\n"
           "Subject: %s\n %s\n"
           "Message-ID: <jis-0001@example.co.jp>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=ISO-2022-JP\n"
           "Content-Transfer-Encoding: 7bit\n\n" % (
               b64w('山本 太郎', 'ISO-2022-JP'),
               b64w('広報課', 'iso-2022-jp'),
               b64w('防災訓練の実施について（１０月２０日）', 'ISO-2022-JP'),
               b64w('のご案内', 'ISO-2022-JP'))).encode('ascii') + \
        '広報課 御中\n\n１０月２０日に防災訓練を実施します。\nよろしくお願いいたします。\n'.encode('iso2022_jp')
    mta_session('subject-iso2022jp', '192.0.2.21', 41201, 'mail.example.co.jp',
                [('yamamoto@example.co.jp', ['koho@pref.example.jp'], msg)], '8A')


# UTF-8: B and Q words, folded; a multi-byte character split across two
# encoded-words; lower-case charset/encoding with "?" "=" "_" escapes.
U8_1 = ("Date: Tue, 07 Oct 2025 10:00:00 +0900\n"
        "From: =?UTF-8?Q?=E4=BD=90=E8=97=A4_=E8=8A=B1=E5=AD=90?= <sato.hanako@example.com>\n"
        "To: koho@pref.example.jp\n"
        "Subject: =?UTF-8?B?44CQ6YeN6KaB44CR?= =?UTF-8?Q?=E4=BC=9A=E8=AD=B0=E5=AE=A4=E3=81=AE?=\n"
        " =?UTF-8?B?5LqI57SE5aSJ5pu0?= (Room 3)\n"
        "Message-ID: <utf8-0001@example.com>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "会議室の予約を変更しました。\n")


def split_word_subject():
    raw = '予約確認のお知らせ'.encode('utf-8')      # 27 bytes
    a, b = raw[:10], raw[10:]                        # cut inside the 4th character
    return '=?UTF-8?B?%s?=\n =?UTF-8?B?%s?=' % (base64.b64encode(a).decode(),
                                                   base64.b64encode(b).decode())


U8_2 = ("Date: Tue, 07 Oct 2025 10:05:00 +0900\n"
        "From: Sato Hanako <sato.hanako@example.com>\n"
        "To: koho@pref.example.jp\n"
        "Subject: " + split_word_subject() + "\n"
        "Message-ID: <utf8-0002@example.com>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "予約を確認しました。\n")

U8_3 = ("Date: Tue, 07 Oct 2025 10:10:00 +0900\n"
        "From: Sato Hanako <sato.hanako@example.com>\n"
        "To: koho@pref.example.jp\n"
        "Subject: =?utf-8?q?Re:_=E8=B3=AA=E5=95=8F=3F_50=3D50?=\n"
        "Message-ID: <utf8-0003@example.com>\n"
        "In-Reply-To: <utf8-0002@example.com>\n"
        "References: <utf8-0002@example.com>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "はい。\n")


@capture
def subject_utf8():
    mta_session('subject-utf8', '192.0.2.22', 41301, 'smtp.example.com',
                [('sato.hanako@example.com', ['koho@pref.example.jp'], m.encode('utf-8'))
                 for m in (U8_1, U8_2, U8_3)], '8B')


@capture
def subject_sjis():
    msg = ("Date: Tue, 07 Oct 2025 11:00:00 +0900\n"
           "From: %s <eigyo@example.ne.jp>\n"
           "To: koho@pref.example.jp\n"
           "Subject: %s\n"
           "Message-ID: <sjis-0001@example.ne.jp>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=Shift_JIS\n"
           "Content-Transfer-Encoding: 8bit\n\n" % (
               b64w('営業部 高橋', 'Shift_JIS'),
               b64w('見積書の送付について', 'Shift_JIS'))).encode('ascii') + \
        'お世話になっております。見積書を送付いたします。\n'.encode('shift_jis')
    mta_session('subject-sjis', '192.0.2.23', 41401, 'mail.example.ne.jp',
                [('eigyo@example.ne.jp', ['koho@pref.example.jp'], msg)], '8C')


@capture
def subject_eucjp():
    msg = ("Date: Tue, 07 Oct 2025 11:30:00 +0900\n"
           "From: %s <somu@example.ac.jp>\n"
           "To: koho@pref.example.jp\n"
           "Subject: %s\n"
           "Message-ID: <eucjp-0001@example.ac.jp>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=EUC-JP\n"
           "Content-Transfer-Encoding: 8bit\n\n" % (
               b64w('総務課 松本', 'EUC-JP'),
               b64w('会議議事録の件', 'EUC-JP'))).encode('ascii') + \
        '議事録をお送りします。\n'.encode('euc_jp')
    mta_session('subject-eucjp', '192.0.2.24', 41501, 'mail.example.ac.jp',
                [('somu@example.ac.jp', ['koho@pref.example.jp'], msg)], '8D')


@capture
def subject_8bit():
    m1 = ("Date: Tue, 07 Oct 2025 12:00:00 +0900\n"
          "From: Support <support@example.info>\n"
          "To: koho@pref.example.jp\n"
          "Subject: 【至急】アカウント確認のお願い\n"
          "Message-ID: <raw8-0001@example.info>\n"
          "MIME-Version: 1.0\n"
          "Content-Type: text/plain; charset=UTF-8\n"
          "Content-Transfer-Encoding: 8bit\n\n"
          "本文です。\n").encode('utf-8')
    m2 = (b"Date: Tue, 07 Oct 2025 12:05:00 +0900\n"
          b"From: Old Mailer <oldmua@example.info>\n"
          b"To: koho@pref.example.jp\n"
          b"Subject: " + '旧式メーラーの件名'.encode('iso2022_jp') + b"\n"
          b"Message-ID: <raw8-0002@example.info>\n"
          b"MIME-Version: 1.0\n"
          b"Content-Type: text/plain; charset=ISO-2022-JP\n\n" +
          'ＪＩＳの本文\n'.encode('iso2022_jp'))
    mta_session('subject-8bit', '192.0.2.25', 41601, 'mail.example.info',
                [('support@example.info', ['koho@pref.example.jp'], m1),
                 ('oldmua@example.info', ['koho@pref.example.jp'], m2)], '8E')


# ------------------------------------------------------------ attachments ---

def b64lines(data):
    s = base64.b64encode(data).decode()
    return '\n'.join(s[i:i + 76] for i in range(0, len(s), 76))


def make_zip():
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, 'w', zipfile.ZIP_STORED) as z:
        zi = zipfile.ZipInfo('readme.txt', date_time=(2025, 10, 6, 9, 0, 0))
        zi.create_system = 3
        z.writestr(zi, 'relaywatch test archive\n' * 20)
        zi = zipfile.ZipInfo('invoice-2025-10.txt', date_time=(2025, 10, 6, 9, 0, 0))
        zi.create_system = 3
        z.writestr(zi, 'Invoice 2025-10, amount 123,456 JPY\n' * 10)
    return bio.getvalue()


PNG_1x1 = base64.b64decode(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==')


def attachments_msg():
    pdf = (b'%PDF-1.4\n% relaywatch test document\n1 0 obj << /Type /Catalog >> endobj\n'
           + b'% padding line for a realistic size\n' * 30 + b'%%EOF\n')
    xlsx_name = b64w('見積書.xlsx', 'UTF-8')
    return ("""Date: Wed, 08 Oct 2025 14:00:00 +0900
From: Accounting <keiri@example.co.jp>
To: koho@pref.example.jp
Subject: Invoice and documents
Message-ID: <attach-0001@example.co.jp>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==outer-7f3a=="

This is a multi-part message in MIME format.

--==outer-7f3a==
Content-Type: multipart/alternative; boundary="==alt-19c2=="

--==alt-19c2==
Content-Type: text/plain; charset=us-ascii

Please find the documents attached.

--==alt-19c2==
Content-Type: text/html; charset=us-ascii

<html><body><p>Please find the documents attached.</p></body></html>

--==alt-19c2==--

--==outer-7f3a==
Content-Type: application/zip; name="documents.zip"
Content-Disposition: attachment; filename="documents.zip"
Content-Transfer-Encoding: base64

%s
--==outer-7f3a==
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*0*=UTF-8''%%E8%%AB%%8B%%E6%%B1%%82%%E6%%9B%%B8;
 filename*1*=%%5F2025%%E5%%B9%%B410%%E6%%9C%%88.pdf
Content-Transfer-Encoding: base64

%s
--==outer-7f3a==
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64

%s
--==outer-7f3a==
Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;
 name="%s"
Content-Disposition: attachment; filename="%s"
Content-Transfer-Encoding: base64

%s
--==outer-7f3a==
Content-Type: multipart/related; boundary="==rel-5d81=="

--==rel-5d81==
Content-Type: text/html; charset=us-ascii

<html><body><img src="cid:logo@example.co.jp"></body></html>

--==rel-5d81==
Content-Type: image/png; name="logo.png"
Content-Disposition: inline; filename="logo.png"
Content-ID: <logo@example.co.jp>
Content-Transfer-Encoding: base64

%s
--==rel-5d81==--

--==outer-7f3a==
Content-Type: message/rfc822
Content-Disposition: attachment; filename="forwarded.eml"

From: Someone Else <else@example.org>
To: keiri@example.co.jp
Subject: Inner forwarded subject (must not replace the outer one)
Message-ID: <inner-0001@example.org>

Inner message body.

--==outer-7f3a==--
""" % (b64lines(make_zip()), b64lines(pdf), b64lines(bytes(range(256)) * 2),
       xlsx_name, xlsx_name, b64lines(b'PK\x03\x04 fake xlsx content ' * 8),
       b64lines(PNG_1x1)))


@capture
def attachments():
    mta_session('attachments', '192.0.2.26', 41701, 'mail.example.co.jp',
                [('keiri@example.co.jp', ['koho@pref.example.jp'], attachments_msg())], '9A')


# ------------------------------------------------ raw-socket segmentation ---

SEG_TXN1 = [
    "Date: Thu, 09 Oct 2025 08:00:00 +0900\r\nFrom: Division Reports <reports@mta9.example.net>\r\n"
    "To: bosai@pref.example.jp\r\n",
    "Message-ID: <seg-0001@mta9.example.net>\r\n"
    "Subject: Quarterly report for the disaster prevention division\r\n",
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
] + ["".join("Segment %02d line %d: the quick brown fox jumps over the lazy dog.\r\n" % (k, j)
             for j in range(1, 5)) for k in range(4, 10)] + [
    "Closing line of the first message.\r\n.\r\n",
]

SEG_TXN2 = crlf("""Date: Thu, 09 Oct 2025 08:01:00 +0900
From: Division Reports <reports@mta9.example.net>
To: bosai@pref.example.jp
Subject: Second message after the segmented one
Message-ID: <seg-0002@mta9.example.net>

Short second message.
.
""")


@capture
def segmented():
    """Source for the tcp-* rewrites: DATA of transaction 1 in 10 segments."""
    h = Handler(qprefix='9B')
    srv = start_server(h, MX, 25)
    try:
        with cap(out('segmented.pcap'), bpf(25)):
            c = RawClient(MX, 25, '192.0.2.29', 42201)
            c.reply()
            c.cmd('EHLO mta9.example.net', 250)
            c.cmd('MAIL FROM:<reports@mta9.example.net>', 250)
            c.cmd('RCPT TO:<bosai@pref.example.jp>', 250)
            c.cmd('DATA', 354)
            for part in SEG_TXN1:
                c.send(part, gap=0.05)
            assert c.reply()[0] == 250
            c.cmd('MAIL FROM:<reports@mta9.example.net>', 250)
            c.cmd('RCPT TO:<bosai@pref.example.jp>', 250)
            c.cmd('DATA', 354)
            c.send(SEG_TXN2, gap=0)
            assert c.reply()[0] == 250
            c.quit()
    finally:
        srv.stop()


DOT_SEGMENTS = [
    # A: headers + first body line, ends with CRLF
    "Date: Thu, 09 Oct 2025 09:00:00 +0900\r\nFrom: Dots <dots@example.net>\r\n"
    "To: koho@pref.example.jp\r\nSubject: Dot stuffing test\r\n"
    "Message-ID: <dots-0001@example.net>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"dotsep\"\r\n\r\n"
    "--dotsep\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    "line one\r\n",
    # B: starts with a stuffed dot; ends with the first dot of the stuffed line ".."
    "..hidden line (was .hidden line)\r\n.",
    # C: the rest of that stuffed line: looks like ".\r\n" at a segment start
    ".\r\n",
    # D: "..." line, then an attachment whose name must still be seen
    "...two dots (was ..two dots)\r\n"
    "--dotsep\r\nContent-Type: text/plain; name=\"after-dots.txt\"\r\n"
    "Content-Disposition: attachment; filename=\"after-dots.txt\"\r\n\r\n"
    "attachment text\r\n--dotsep--\r\n",
    # E, F: the terminating dot and its CRLF in two segments
    ".",
    "\r\n",
]


@capture
def dot_stuffing():
    h = Handler(qprefix='9C')
    srv = start_server(h, MX, 25)
    try:
        with cap(out('dot-stuffing.pcap'), bpf(25)):
            c = RawClient(MX, 25, '192.0.2.30', 42301)
            c.reply()
            c.cmd('EHLO dots.example.net', 250)
            c.cmd('MAIL FROM:<dots@example.net>', 250)
            c.cmd('RCPT TO:<koho@pref.example.jp>', 250)
            c.cmd('DATA', 354)
            for part in DOT_SEGMENTS:
                c.send(part, gap=0.05)
            assert c.reply()[0] == 250
            c.cmd('MAIL FROM:<dots@example.net>', 250)
            c.cmd('RCPT TO:<soumu@pref.example.jp>', 250)
            c.cmd('DATA', 354)
            c.send(crlf("From: Dots <dots@example.net>\nTo: soumu@pref.example.jp\n"
                        "Subject: After the dots\nMessage-ID: <dots-0002@example.net>\n\n"
                        "ok\n.\n"), gap=0)
            assert c.reply()[0] == 250
            c.quit()
        # what the server stored after un-stuffing, for the notes
        for m in h.messages:
            log('  dot-stuffing stored:', m[2][-200:])
    finally:
        srv.stop()


# ------------------------------------------------------------ from-padded ---
#
# Emotet-style display names padded past the 1 KB that the sensor keeps of a
# From as sent: the real address comes after the padding. Folded the way
# mail clients fold (a line of at most 76 columns, RFC 5322 §2.2.3).

def fold(words, head):
    """head + words joined by blanks, a new folded line before a word that
    would pass column 76."""
    lines, cur = [], head
    for w in words:
        if len(cur) + 1 + len(w) > 76 and cur.strip():
            lines.append(cur)
            cur = ' ' + w
        else:
            cur += ' ' + w if cur else w
    lines.append(cur)
    return '\n'.join(lines)


PAD_WORDS = ('Kantan Helpdesk (Information Systems Division) support desk, '
             'general affairs section;').split() * 50          # ~4 KB
PAD_JA = '総務課 情報システム担当 '   # an encoded-word of 60 columns


def padded_msg(n, frm, subject):
    return ("Date: Wed, 08 Oct 2025 09:%02d:00 +0900\n"
            "%s\n"
            "To: koho@pref.example.jp\n"
            "Subject: %s\n"
            "Message-ID: <padded-%04d@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            "Please see the attached documents.\n" % (n, frm, subject, n))


def from_padded_msgs():
    # 1: a quoted display name of ~4 KB, the claimed address first
    quoted = fold(['"helpdesk@s-kantan.example.jp'] + PAD_WORDS[:-1] +
                  [PAD_WORDS[-1] + '"', '<nobody@badhost.example>'], 'From:')
    # 2: ~10 KB of encoded-words (past one 8 KB unfolded field), the claimed
    # address in the first one, a comment before the address
    words = [b64w('【helpdesk@s-kantan.example.jp】', 'UTF-8')]
    words += [b64w(PAD_JA, 'UTF-8') for _ in range(180)]
    encoded = fold(words + ['(Helpdesk)', '<x@evil.example>'], 'From:')
    # 3: the sender's own address in a long display name: not a spoof
    own = fold(['"yamada@pref.example.jp'] + PAD_WORDS[:-1] +
               [PAD_WORDS[-1] + '"', '<yamada@pref.example.jp>'], 'From:')
    return [('nobody@badhost.example', ['koho@pref.example.jp'],
             padded_msg(1, quoted, 'RE: Invoice')),
            ('x@evil.example', ['koho@pref.example.jp'],
             padded_msg(2, encoded, 'RE: Meeting minutes')),
            ('yamada@pref.example.jp', ['koho@pref.example.jp'],
             padded_msg(3, own, 'Disaster drill schedule'))]


@capture
def from_padded():
    mta_session('from-padded', '192.0.2.16', 42401, 'mail.example.org', from_padded_msgs(),
                '9D')


# ------------------------------------------------------- rfc822-attachment ---
#
# A reply that forwards the old thread as an attachment (message/rfc822),
# the zip inside the forwarded message, as Emotet's thread hijacks do.

def rfc822_attachment_msg():
    zip_name = b64w('請求書_2025年10月.zip', 'UTF-8')
    return ("Date: Thu, 09 Oct 2025 10:00:00 +0900\n"
            "From: \"Accounting\" <keiri@example.co.jp>\n"
            "To: koho@pref.example.jp\n"
            "Subject: RE: Invoice for October\n"
            "Message-ID: <fwd-0001@example.co.jp>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"==outer-3c1e==\"\n"
            "\n"
            "--==outer-3c1e==\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "\n"
            "Please see the invoice in the forwarded mail below.\n"
            "\n"
            "--==outer-3c1e==\n"
            "Content-Type: message/rfc822\n"
            "Content-Disposition: attachment; filename=\"RE_ Invoice.eml\"\n"
            "\n"
            "Date: Wed, 01 Oct 2025 09:00:00 +0900\n"
            "From: Koho <koho@pref.example.jp>\n"
            "To: keiri@example.co.jp\n"
            "Subject: Invoice for October\n"
            "Message-ID: <fwd-inner-0001@pref.example.jp>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"==inner-8b2d==\"\n"
            "\n"
            "--==inner-8b2d==\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "\n"
            "The invoice is attached.\n"
            "\n"
            "--==inner-8b2d==\n"
            "Content-Type: application/zip; name=\"%s\"\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"%s\"\n"
            "\n"
            "%s\n"
            "--==inner-8b2d==--\n"
            "\n"
            "--==outer-3c1e==--\n" % (zip_name, zip_name, b64lines(make_zip())))


@capture
def rfc822_attachment():
    mta_session('rfc822-attachment', '192.0.2.17', 42501, 'mail.example.co.jp',
                [('keiri@example.co.jp', ['koho@pref.example.jp'], rfc822_attachment_msg())],
                '9E')


def main():
    enter_client_ns()
    names = sys.argv[1:] or list(CAPTURES)
    for n in names:
        log('==', n)
        CAPTURES[n]()


if __name__ == '__main__':
    main()
