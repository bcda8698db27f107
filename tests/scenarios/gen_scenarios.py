#!/usr/bin/python3
# Live part of make-scenarios.sh: incident scenarios for the detection rules.
#
#   /usr/bin/python3 gen_scenarios.py [NAME ...]          (default: all)
#
# Runs inside the rw-cli namespace made by ../captures/netns.sh.  Servers are
# aiosmtpd on mx.pref.example.jp 10.1.0.25: port 587 = submission with AUTH
# (local accounts, cleartext so the sensor can see it), port 25 = an "open
# relay" handler that accepts every recipient without AUTH.  Clients are
# Python smtplib.  Every session is captured with tcpdump on the server veth.
#
# All content comes from fixed tables and seeded RNGs, client ports are fixed,
# so a rerun reproduces the same messages.  NAME.facts.json is written from
# what the CLIENT sent and the replies it received (not from parsing the
# capture); verify_scenarios.py then cross-checks it against the pcap.

import base64
import io
import json
import os
import random
import smtplib
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'captures'))
from capturelib import (CAP_IF, Capture, Handler, crlf, enter_client_ns, log,  # noqa: E402
                        smtp_connect, smtp_quit, start_server)

MX = '10.1.0.25'
DOMAIN = 'pref.example.jp'


# ------------------------------------------------------------- encoding ---

def enc_words(text, charset):
    """RFC 2047 B-encode TEXT as one or more encoded-words (each <= 75
    chars), folded onto continuation lines; returns the raw header value."""
    codec = {'ISO-2022-JP': 'iso2022_jp', 'UTF-8': 'utf-8'}[charset]
    limit = 36 if charset == 'ISO-2022-JP' else 45        # octets per word
    words, cur = [], ''
    for ch in text:
        if cur and len((cur + ch).encode(codec)) > limit:
            words.append(cur)
            cur = ''
        cur += ch
    if cur:
        words.append(cur)
    return '\n '.join('=?%s?B?%s?=' % (charset, base64.b64encode(w.encode(codec)).decode())
                      for w in words)


def subject_header(text, charset, prefix=''):
    """prefix (ASCII, e.g. 'Re: ') stays unencoded in front of the words."""
    if all(ord(c) < 128 for c in text):
        return prefix + text
    return prefix + enc_words(text, charset)


def unfold(v):
    return v.replace('\n ', ' ').replace('\n\t', '\t')


def zip_bytes(files):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, 'w', zipfile.ZIP_STORED) as z:
        for name, data in files:
            zi = zipfile.ZipInfo(name, date_time=(2025, 10, 10, 9, 0, 0))
            zi.create_system = 3
            z.writestr(zi, data)
    return bio.getvalue()


def b64lines(data):
    s = base64.b64encode(data).decode()
    return '\n'.join(s[i:i + 76] for i in range(0, len(s), 76))


def build(headers, body, body_charset='us-ascii', attachment=None):
    """headers: list of (name, raw value); body: str; returns wire bytes."""
    codec = {'ISO-2022-JP': 'iso2022_jp', 'UTF-8': 'utf-8', 'us-ascii': 'ascii'}[body_charset]
    h = ''.join('%s: %s\n' % (k, v) for k, v in headers)
    h += 'MIME-Version: 1.0\n'
    if attachment is None:
        h += 'Content-Type: text/plain; charset=%s\n' % body_charset
        h += 'Content-Transfer-Encoding: %s\n\n' % ('7bit' if body_charset != 'UTF-8' else '8bit')
        return crlf(h.encode('ascii') + body.encode(codec))
    fname, ctype, data = attachment
    b = 'mixed-%s' % base64.b32encode(fname.encode()).decode()[:12].lower()
    h += 'Content-Type: multipart/mixed; boundary="%s"\n\n' % b
    out = h.encode('ascii')
    out += ('--%s\nContent-Type: text/plain; charset=%s\nContent-Transfer-Encoding: 7bit\n\n'
            % (b, body_charset)).encode('ascii') + body.encode(codec) + b'\n'
    out += ('--%s\nContent-Type: %s; name="%s"\nContent-Disposition: attachment; filename="%s"\n'
            'Content-Transfer-Encoding: base64\n\n%s\n--%s--\n'
            % (b, ctype, fname, fname, b64lines(data), b)).encode('ascii')
    return crlf(out)


# --------------------------------------------------------------- recorder ---

class Recorder:
    """Collects what the client did, in order, and the replies it got."""

    def __init__(self, name, capture, description):
        self.name, self.capture, self.description = name, capture, description
        self.events = []
        self.session = 0
        self.secrets = []
        self.count = {}

    def _bump(self, key, n=1):
        self.count[key] = self.count.get(key, 0) + n
        return self.count[key]

    def connect(self, ip, sport, port, helo, auth_user=None):
        self.session += 1
        self.cur = {'session': self.session, 'orig_h': ip, 'orig_p': sport,
                    'resp_h': MX, 'resp_p': port, 'helo': helo}
        self.auth_user = None
        self.depth = 0
        s = smtp_connect(MX, port, ip, sport, helo)
        s.ehlo()
        return s

    def auth(self, s, mech, user, password, initial=True):
        if password not in self.secrets:
            self.secrets.append(password)
        s.user, s.password = user, password
        fn = {'PLAIN': s.auth_plain, 'LOGIN': s.auth_login}[mech]
        try:
            code, msg = s.auth(mech, fn, initial_response_ok=initial)
        except smtplib.SMTPAuthenticationError as e:
            code, msg = e.smtp_code, e.smtp_error
        ok = code == 235
        if ok:
            self.auth_user = user
        ev = dict(seq=len(self.events) + 1, type='auth', **self.cur, mech=mech, user=user,
                  result='success' if ok else 'failure',
                  reply='%d %s' % (code, msg.decode()),
                  n_failures_for_user=self.count.get(('authfail', user), 0) + (0 if ok else 1),
                  n_failures_from_client=self.count.get(('authfail_ip', self.cur['orig_h']), 0) + (0 if ok else 1))
        if not ok:
            self._bump(('authfail', user))
            self._bump(('authfail_ip', self.cur['orig_h']))
        self.events.append(ev)
        return ok

    def send(self, s, mailfrom, rcpts, msg, meta):
        """One transaction with smtplib's primitives; meta: facts about the
        message text (subject, subject_raw, from, message_id, ...)."""
        self.depth += 1
        opts = ['size=%d' % len(msg)] if s.does_esmtp and s.has_extn('size') else []
        code, r = s.mail(mailfrom, opts)
        assert code == 250, (code, r)
        rejected = []
        for rc in rcpts:
            code, r = s.rcpt(rc)
            if code >= 400:
                rejected.append('<%s>' % rc)
        code, r = s.data(msg)
        assert code == 250, (code, r)
        subj = meta['subject']
        acct = self.auth_user
        accepted = len(rcpts) - len(rejected)
        ev = dict(seq=len(self.events) + 1, type='message', **self.cur, trans_depth=self.depth,
                  auth_user=acct, mailfrom='<%s>' % mailfrom,
                  rcptto=['<%s>' % r for r in rcpts], rcpt_count=len(rcpts),
                  rcpt_rejected=len(rejected), rcptto_rejected=rejected, **meta,
                  last_reply='%d %s' % (code, r.decode()))
        ev['n'] = self._bump('msgs')
        ev['n_recipients'] = self._bump('rcpts', accepted)
        ev['n_by_subject'] = self._bump(('subj', subj))
        ev['n_by_client'] = self._bump(('ip', self.cur['orig_h']))
        ev['n_recipients_by_client'] = self._bump(('ip_rcpt', self.cur['orig_h']), accepted)
        if acct:
            ev['n_by_account'] = self._bump(('acct', acct))
            ev['n_recipients_by_account'] = self._bump(('acct_rcpt', acct), accepted)
        else:
            ev['n_by_account'] = None
            ev['n_recipients_by_account'] = None
        self.events.append(ev)

    def facts(self, extra=None, notes=''):
        msgs = [e for e in self.events if e['type'] == 'message']
        auths = [e for e in self.events if e['type'] == 'auth']
        sessions = {}
        for e in self.events:
            sessions.setdefault(e['session'], {k: e[k] for k in
                                               ('session', 'orig_h', 'orig_p', 'resp_h', 'resp_p', 'helo')})
        for s in sessions.values():
            s['messages'] = sum(1 for e in msgs if e['session'] == s['session'])
            s['auth_failures'] = sum(1 for e in auths if e['session'] == s['session'] and e['result'] == 'failure')
            s['auth_successes'] = sum(1 for e in auths if e['session'] == s['session'] and e['result'] == 'success')
        clients, accounts, subjects, rdoms = {}, {}, {}, {}
        for e in msgs:
            c = clients.setdefault(e['orig_h'], {'sessions': 0, 'messages': 0, 'recipients': 0, 'auth_failures': 0})
            c['messages'] += 1
            c['recipients'] += e['rcpt_count'] - e['rcpt_rejected']
            subjects[e['subject']] = subjects.get(e['subject'], 0) + 1
            for r in e['rcptto']:
                d = r.strip('<>').split('@')[1]
                rdoms[d] = rdoms.get(d, 0) + 1
            if e['auth_user']:
                a = accounts.setdefault(e['auth_user'], {'messages': 0, 'recipients': 0,
                                                         'auth_successes': 0, 'auth_failures': 0,
                                                         'client_ips': []})
                a['messages'] += 1
                a['recipients'] += e['rcpt_count'] - e['rcpt_rejected']
                if e['orig_h'] not in a['client_ips']:
                    a['client_ips'].append(e['orig_h'])
        for s in sessions.values():
            clients.setdefault(s['orig_h'], {'sessions': 0, 'messages': 0, 'recipients': 0,
                                             'auth_failures': 0})['sessions'] += 1
        for e in auths:
            clients[e['orig_h']]['auth_failures'] += e['result'] == 'failure'
            a = accounts.setdefault(e['user'], {'messages': 0, 'recipients': 0, 'auth_successes': 0,
                                                'auth_failures': 0, 'client_ips': []})
            a['auth_successes' if e['result'] == 'success' else 'auth_failures'] += 1
            if e['orig_h'] not in a['client_ips']:
                a['client_ips'].append(e['orig_h'])
        d = {'capture': self.capture, 'scenario': self.name, 'description': self.description,
             'server': {'ip': MX, 'name': 'mx.pref.example.jp', 'domain': DOMAIN},
             'message_count': len(msgs),
             'recipient_count': sum(e['rcpt_count'] - e['rcpt_rejected'] for e in msgs),
             'session_count': len(sessions),
             'auth_failure_count': sum(1 for e in auths if e['result'] == 'failure'),
             'auth_success_count': sum(1 for e in auths if e['result'] == 'success'),
             'client_ips': clients, 'accounts': accounts, 'subjects': subjects,
             'recipient_domains': dict(sorted(rdoms.items())),
             'sessions': list(sessions.values())}
        if extra:
            d.update(extra)
        d['events'] = self.events
        d['secrets'] = self.secrets
        d['notes'] = notes
        path = os.path.join(HERE, self.name + '.facts.json')
        with open(path, 'w') as f:
            json.dump(d, f, ensure_ascii=False, indent=1)
            f.write('\n')
        log('  wrote', os.path.relpath(path), len(msgs), 'messages', len(auths), 'auth events')


def capture(path, ports):
    bpf = 'host %s and (%s)' % (MX, ' or '.join('tcp port %d' % p for p in ports))
    return Capture([(path, CAP_IF, [])], bpf)


def relay_server(qprefix):
    return start_server(Handler(qprefix=qprefix), MX, 25)


def submission_server(accounts, qprefix):
    return start_server(Handler(accounts=accounts, qprefix=qprefix), MX, 587, auth=True,
                        auth_require_tls=False)


SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__.replace('_', '-')] = fn
    return fn


OUTSIDE_DOMAINS = [
    'example.com', 'example.net', 'example.org', 'mail.example.com', 'mx.example.net',
    'example.co.uk', 'example.de', 'example.fr', 'example.it', 'example.com.br',
    'example.co.kr', 'example.com.cn', 'example.ru', 'example.in', 'example.com.au',
    'example.ca', 'example.es', 'example.nl', 'example.se', 'example.pl',
    'example.com.mx', 'example.co.za', 'example.com.tr', 'example.vn']
FIRST = ['james', 'mary', 'john', 'linda', 'robert', 'susan', 'michael', 'karen', 'david',
         'nancy', 'william', 'lisa', 'richard', 'betty', 'joseph', 'sandra', 'thomas', 'ashley',
         'chris', 'emily', 'daniel', 'donna', 'paul', 'carol', 'mark', 'ruth', 'kevin', 'sharon']


def addr(rng, dom):
    return '%s.%s%d@%s' % (rng.choice(FIRST), rng.choice(FIRST), rng.randint(1, 999), dom)


# ------------------------------------------------- 1 relay-can-i-trust-you ---

@scenario
def relay_can_i_trust_you():
    rng = random.Random(20251001)
    rec = Recorder('relay-can-i-trust-you', 'relay-can-i-trust-you.pcap',
                   'Open-relay abuse: 203.0.113.7, no AUTH, foreign MAIL FROM, foreign recipients (1-3 per message, '
                   'distinct domains), the relay answers 250 to everything; 130 messages "Re: Can I trust you?" without '
                   'In-Reply-To/References in 11 sessions.')
    sizes = [10, 12, 8, 15, 10, 9, 14, 11, 13, 7, 21]
    assert sum(sizes) == 130
    senders = ['grace.li@mail.example.com', 'wong.ka.ming@example.com.cn', 'mrs.sarah.ali@example.in',
               'lucy.tan@mx.example.net', 'capt.james.mills@example.co.uk']
    srv = relay_server('R1')
    k = 0
    try:
        with capture(os.path.join(HERE, rec.capture), [25]):
            for si, n in enumerate(sizes):
                helo = 'WIN-' + ''.join(rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789') for _ in range(11))
                s = rec.connect('203.0.113.7', 51001 + si, 25, helo)
                for _ in range(n):
                    k += 1
                    sender = rng.choice(senders)
                    name = sender.split('@')[0].replace('.', ' ').title()
                    doms = rng.sample(OUTSIDE_DOMAINS, rng.randint(1, 3))
                    rcpts = [addr(rng, d) for d in doms]
                    mid = '<%08x.%04d@%s>' % (rng.getrandbits(32), k, sender.split('@')[1])
                    date = 'Wed, 01 Oct 2025 %02d:%02d:%02d +0000' % (3 + k // 60, k % 60, (k * 7) % 60)
                    body = ('Hello dear,\n\nI am contacting you because I need a reliable partner for a '
                            'confidential business transaction. Can I trust you?\nPlease reply to me '
                            'directly so that I can give you the details.\n\nRegards,\n%s\n' % name)
                    hdrs = [('Date', date), ('From', '"%s" <%s>' % (name, sender)),
                            ('Reply-To', sender), ('To', ', '.join(rcpts)),
                            ('Subject', 'Re: Can I trust you?'), ('Message-ID', mid)]
                    rec.send(s, sender, rcpts, build(hdrs, body), {
                        'from': '"%s" <%s>' % (name, sender), 'subject': 'Re: Can I trust you?',
                        'subject_raw': 'Re: Can I trust you?', 'message_id': mid,
                        'in_reply_to': None, 'references': None, 'attachments': []})
                smtp_quit(s)
    finally:
        srv.stop()
    rec.facts(notes='Every message starts with "Re: " but none has In-Reply-To or References. Recipients per message: '
                    '1-3, always at distinct outside domains; MAIL FROM rotates over 5 foreign senders. '
                    'n_by_subject in each message event is the running count of "Re: Can I trust you?" '
                    '(use it to find the message at which a per-subject threshold is crossed).')


# -------------------------------------------------------- 2 hijacked-account ---

HELI = 'bosai-heli@pref.example.jp'
HELI_PW = 'bosaiheli2025'          # the weak real password


@scenario
def hijacked_account():
    rng = random.Random(20251002)
    rec = Recorder('hijacked-account', 'hijacked-account.pcap',
                   'Account takeover: 3 ordinary messages from bosai-heli@pref.example.jp on its usual client 10.1.2.15; '
                   'then 198.51.100.23 on 587: 12 failed AUTH LOGIN for bosai-heli, failed tries of 5 other account '
                   'names, success with the weak password, and 40 spam messages "HELLO!DEAR!GOOD NEWS TO YOU," '
                   'to 4 recipients at distinct outside domains each (160 recipients).')
    accounts = {HELI: HELI_PW}
    srv = submission_server(accounts, 'H2')
    guesses = iter('Guess%02d-%s' % (i, w) for i, w in enumerate(
        ['bosai2024', 'heli2024', 'Bosai#1', 'pref2025', 'heliport9', 'bosaiheli!', 'Heli-2025',
         'bosai-2025', 'qwerty-heli', 'admin-heli', 'bosai_heli', 'Heli2025!', 'winter-2025',
         'summer-2025', 'spring-2025', 'autumn-2025', 'letmein-25'], 1))
    ordinary = [
        ('koho@pref.example.jp', '防災ヘリ運航計画（10月）の送付', '10月の運航計画を送付します。ご確認ください。'),
        ('soumu@pref.example.jp', '燃料購入伝票の提出について', '燃料購入伝票を提出します。'),
        ('bosai@pref.example.jp', '訓練飛行の実施報告', '本日の訓練飛行は予定どおり終了しました。'),
    ]
    attack_plan = [   # (session, [(user, wrong?)...]); True = bosai-heli
        [HELI, HELI, HELI],
        [HELI, HELI, HELI],
        ['admin@pref.example.jp', 'info@pref.example.jp', HELI],
        [HELI, HELI, HELI],
        ['soumu@pref.example.jp', 'test@pref.example.jp', HELI],
        ['kikaku@pref.example.jp', HELI],
    ]
    assert sum(u == HELI for sess in attack_plan for u in sess) == 12
    used = set()
    try:
        with capture(os.path.join(HERE, rec.capture), [587]):
            for i, (to, subj, body) in enumerate(ordinary):
                s = rec.connect('10.1.2.15', 52001 + i, 587, 'heli-pc15.pref.example.jp')
                assert rec.auth(s, 'LOGIN', HELI, HELI_PW, initial=True)
                raw = subject_header(subj, 'ISO-2022-JP')
                mid = '<2025100109%02d00.%d.bosai-heli@pref.example.jp>' % (i, 4100 + i)
                hdrs = [('Date', 'Wed, 01 Oct 2025 09:%02d:00 +0900' % i),
                        ('From', '%s <%s>' % (enc_words('防災航空隊', 'ISO-2022-JP'), HELI)),
                        ('To', to), ('Subject', raw), ('Message-ID', mid),
                        ('X-Mailer', 'Microsoft Outlook 16.0')]
                rec.send(s, HELI, [to], build(hdrs, body + '\n', 'ISO-2022-JP'), {
                    'from': '%s <%s>' % (enc_words('防災航空隊', 'ISO-2022-JP'), HELI),
                    'subject': subj, 'subject_raw': unfold(raw), 'message_id': mid,
                    'in_reply_to': None, 'references': None, 'attachments': []})
                smtp_quit(s)
            port = 52101
            for sess in attack_plan:
                s = rec.connect('198.51.100.23', port, 587, 'User')
                port += 1
                for user in sess:
                    assert not rec.auth(s, 'LOGIN', user, next(guesses), initial=False)
                smtp_quit(s)
            spam_sessions = [10, 10, 10, 10]
            for sn, n in enumerate(spam_sessions):
                s = rec.connect('198.51.100.23', port, 587, 'User')
                port += 1
                assert rec.auth(s, 'LOGIN', HELI, HELI_PW, initial=False)
                for _ in range(n):
                    doms = rng.sample(OUTSIDE_DOMAINS, 4)
                    rcpts = []
                    for d in doms:
                        a = addr(rng, d)
                        while a in used:
                            a = addr(rng, d)
                        used.add(a)
                        rcpts.append(a)
                    m = rec.count.get('msgs', 0) + 1
                    mid = '<%010d.%04d@pref.example.jp>' % (rng.getrandbits(30), m)
                    body = ('Dear Friend,\n\nI am Mrs. Grace Williams. I have a donation of USD 4,500,000.00 for you.\n'
                            'Reply to my private email grace.williams@example.com for more details.\n')
                    frm = 'Mrs. Grace Williams <%s>' % HELI
                    hdrs = [('Date', 'Thu, 02 Oct 2025 02:%02d:00 +0000' % (m % 60)), ('From', frm),
                            ('Reply-To', 'grace.williams@example.com'), ('To', 'Undisclosed Recipients <%s>' % HELI),
                            ('Subject', 'HELLO!DEAR!GOOD NEWS TO YOU,'), ('Message-ID', mid)]
                    rec.send(s, HELI, rcpts, build(hdrs, body), {
                        'from': frm, 'subject': 'HELLO!DEAR!GOOD NEWS TO YOU,',
                        'subject_raw': 'HELLO!DEAR!GOOD NEWS TO YOU,', 'message_id': mid,
                        'in_reply_to': None, 'references': None, 'attachments': []})
                smtp_quit(s)
    finally:
        srv.stop()
    rec.facts(extra={'compromised_account': HELI, 'usual_client': '10.1.2.15',
                     'attacker': '198.51.100.23'},
              notes='Order: 3 ordinary messages from 10.1.2.15 (AUTH LOGIN with initial response), then 6 attacker sessions '
                    'with 17 failed bare "AUTH LOGIN" (334 Username: / 334 Password:) attempts - 12 for bosai-heli, one each '
                    'for admin@, info@, soumu@, test@, kikaku@pref.example.jp (those accounts do not exist here) - then 4 '
                    'sessions that each log in as bosai-heli (success) and send 10 spam messages. Every spam message has '
                    '4 recipients at 4 distinct outside domains; all 160 spam recipient addresses are distinct. '
                    'auth events carry n_failures_for_user / n_failures_from_client (running counts incl. this one).')


# ----------------------------------------------------- 3 contact-form-flood ---

def random_subject(rng, hira):
    pool = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
            '!"#$%&\'()*+,-./:;<>?@[]^_`{|}~')           # no "=" (no fake encoded words), no "\"
    n = rng.randint(10, 100)
    s = [rng.choice(pool) for _ in range(n)]
    if hira:
        for _ in range(rng.randint(2, 6)):
            s[rng.randrange(n)] = chr(rng.randint(0x3041, 0x3093))
    return ''.join(s).strip()


@scenario
def contact_form_flood():
    rng = random.Random(20251003)
    rec = Recorder('contact-form-flood', 'contact-form-flood.pcap',
                   'Contact-form flood: the web server 10.1.0.80 (trusted network, no AUTH) to port 25, MAIL FROM '
                   'www-form@pref.example.jp, RCPT koho@pref.example.jp, 70 messages (one SMTP session each) whose '
                   'subjects are random letters/symbols of 10-100 characters, some with hiragana, all different.')
    srv = relay_server('F3')
    seen = set()
    try:
        with capture(os.path.join(HERE, rec.capture), [25]):
            for i in range(70):
                hira = i % 4 == 3
                subj = random_subject(rng, hira)
                while subj in seen or len(subj) < 10:
                    subj = random_subject(rng, hira)
                seen.add(subj)
                raw = subject_header(subj, 'UTF-8')
                s = rec.connect('10.1.0.80', 53001 + i, 25, 'www.pref.example.jp')
                mid = '<form.%06d.%d@www.pref.example.jp>' % (rng.getrandbits(20), i + 1)
                body = ('お問い合わせフォームから送信されました。\n\n件名: %s\nお名前: %s\n内容:\n%s\n'
                        % (subj, ''.join(rng.choice('abcdefxyz!?#') for _ in range(8)),
                           ''.join(rng.choice('abcdefghijklmnopqrstuvwxyz0123456789 !?#$%&') for _ in range(60))))
                hdrs = [('Date', 'Fri, 03 Oct 2025 01:%02d:%02d +0900' % (i // 60, i % 60)),
                        ('From', 'www-form@pref.example.jp'), ('To', 'koho@pref.example.jp'),
                        ('Subject', raw), ('Message-ID', mid), ('X-Mailer', 'PHPMailer 6.8.1')]
                rec.send(s, 'www-form@pref.example.jp', ['koho@pref.example.jp'],
                         build(hdrs, body, 'UTF-8'), {
                             'from': 'www-form@pref.example.jp', 'subject': subj, 'subject_raw': unfold(raw),
                             'message_id': mid, 'in_reply_to': None, 'references': None, 'attachments': []})
                smtp_quit(s)
    finally:
        srv.stop()
    rec.facts(notes='Subjects: seeded RNG (random.Random(20251003)); printable ASCII letters/digits/symbols except "=" and "\\", '
                    'length 10-100; every 4th message (i % 4 == 3, i.e. messages 4, 8, ..., 68) has 2-6 characters replaced by hiragana '
                    'and is sent as =?UTF-8?B?...?= words (folded when long); the others are raw ASCII. All 70 subjects differ. '
                    'Every message: 1 recipient, no AUTH, one session per message.')


# ------------------------------------------------------------ 4 emotet-reply ---

KOSHA = 'soumu@kankyo-kosha.example.jp'
KOSHA_PW = 'Kosha-soumu-PW-2f9'


@scenario
def emotet_reply():
    rec = Recorder('emotet-reply', 'emotet-reply.pcap',
                   'Emotet-style thread hijack: 203.0.113.50 authenticates on 587 with the stolen account '
                   'soumu@kankyo-kosha.example.jp (an affiliated organisation hosted on this server) and sends 6 messages '
                   'From: "helpdesk@s-kantan.example.jp" <nobody@badhost.example> with subject "RE: <older ordinary '
                   'Japanese subject>" (ISO-2022-JP) and a zip attachment.')
    srv = submission_server({KOSHA: KOSHA_PW}, 'E4')
    plan = [
        ('kimura@client-a.example.co.jp', '令和7年度 補助金申請書類の提出について'),
        ('sales@print.example.co.jp', '10月分 請求書送付のご案内'),
        ('yamada@kensetsu.example.co.jp', '打合せ日程の件'),
        ('info@event.example.jp', '見積書再送のお願い'),
        ('tanaka@consult.example.co.jp', '契約書（案）の確認依頼'),
        ('suzuki@pref.example.jp', '会議資料の共有について'),
    ]
    frm = '"helpdesk@s-kantan.example.jp" <nobody@badhost.example>'
    try:
        with capture(os.path.join(HERE, rec.capture), [587]):
            for sn in range(2):
                s = rec.connect('203.0.113.50', 54001 + sn, 587, 'DESKTOP-K3M9Q2L')
                assert rec.auth(s, 'LOGIN', KOSHA, KOSHA_PW, initial=True)
                for j in range(3):
                    i = sn * 3 + j
                    to, old = plan[i]
                    raw = 'RE: ' + enc_words(old, 'ISO-2022-JP')
                    zname = 'Doc_20251010_%02d.zip' % (i + 1)
                    zdata = zip_bytes([('Doc_20251010_%02d.doc' % (i + 1),
                                        b'relaywatch test file - harmless placeholder for a malicious document\n' * 8)])
                    mid = '<20251010%02d1500.%d.emotet@kankyo-kosha.example.jp>' % (10 + i, 7700 + i)
                    hdrs = [('Date', 'Fri, 10 Oct 2025 %02d:15:00 +0900' % (10 + i)), ('From', frm), ('To', to),
                            ('Subject', raw), ('Message-ID', mid)]
                    body = ('%s 様\n\nお世話になっております。\n添付ファイルをご確認ください。\n'
                            'パスワードは別途お送りします。\n\n> %s\n' % (to.split('@')[0], old))
                    rec.send(s, KOSHA, [to], build(hdrs, body, 'ISO-2022-JP',
                                                   (zname, 'application/zip', zdata)), {
                        'from': frm, 'subject': 'RE: ' + old, 'subject_raw': unfold(raw),
                        'message_id': mid, 'in_reply_to': None, 'references': None,
                        'attachments': [zname]})
                smtp_quit(s)
    finally:
        srv.stop()
    rec.facts(extra={'protected_domain': 's-kantan.example.jp',
                     'display_name_address': 'helpdesk@s-kantan.example.jp',
                     'header_from_address': 'nobody@badhost.example'},
              notes='The From display name is a quoted e-mail address of a protected domain while the real From address is '
                    'nobody@badhost.example; the envelope sender is the authenticated account. Subjects are "RE: " + one '
                    'ISO-2022-JP B-word (folded onto a second word when long); no In-Reply-To/References. Each message has exactly '
                    'one attachment, a stored zip with one .doc-named text file.')


# ----------------------------------------------------------- 5 benign-staff ---

STAFF = [  # account, ip, charset of the MUA, AUTH mechanism, reply prefix
    ('suzuki.k', '10.1.2.21', 'ISO-2022-JP', 'PLAIN', 'RE: '),
    ('takahashi.m', '10.1.2.22', 'UTF-8', 'LOGIN', 'Re: '),
    ('tanaka.y', '10.1.2.23', 'ISO-2022-JP', 'LOGIN', 'RE: '),
    ('watanabe.s', '10.1.2.24', 'UTF-8', 'PLAIN', 'Re: '),
    ('ito.h', '10.1.2.25', 'ISO-2022-JP', 'PLAIN', 'RE: '),
    ('yamamoto.t', '10.1.2.26', 'UTF-8', 'LOGIN', 'Re: '),
    ('nakamura.a', '10.1.2.27', 'ISO-2022-JP', 'LOGIN', 'RE: '),
    ('kobayashi.r', '10.1.2.28', 'UTF-8', 'PLAIN', 'Re: '),
    ('kato.n', '10.1.2.29', 'ISO-2022-JP', 'PLAIN', 'RE: '),
    ('yoshida.e', '10.1.2.30', 'UTF-8', 'LOGIN', 'Re: '),
]
STAFF_PW = {a: 'Staff-%s-pw-%03x' % (a.replace('.', '-'), 0x5a0 + i) for i, (a, *_r) in enumerate(STAFF)}
THREADS = [  # subject, participants (staff indexes, in order of the 4 messages), extra outside rcpt
    ('10月定例会議の議事録', [0, 1, 0, 2], None),
    ('防災訓練の実施計画（案）', [3, 4, 3, 5], None),
    ('予算要求資料の提出について', [6, 7, 8, 6], None),
    ('広報誌11月号の原稿確認', [9, 0, 9, 0], 'insatsu@print.example.co.jp'),
    ('庁舎設備点検のお知らせ', [1, 2, 3, 1], None),
    ('研修参加者の取りまとめ', [4, 5, 6, 7], None),
    ('ヘリポート運用マニュアル改訂', [8, 9, 8, 2], None),
    ('来客対応の件', [5, 3, 5, 4], 'guest.tanaka@example.com'),
    ('備品購入申請', [7, 6, 1, 7], None),
    ('県民アンケート結果の共有', [2, 8, 9, 0], 'research@survey.example.co.jp'),
]


@scenario
def benign_staff():
    rec = Recorder('benign-staff', 'benign-staff.pcap',
                   'Normal staff traffic: 10 staff accounts on their own PCs 10.1.2.21-30, AUTH (PLAIN or LOGIN) on 587, '
                   '40 messages in 10 threads of 4 (original + 3 proper replies with In-Reply-To/References), Japanese '
                   'subjects in ISO-2022-JP (Outlook-like clients, "RE: ") or UTF-8 (Thunderbird-like, "Re: "), 1-3 '
                   'recipients, 3 threads copy one outside address.')
    accounts = {'%s@%s' % (a, DOMAIN): STAFF_PW[a] for a, *_r in STAFF}
    srv = submission_server(accounts, 'S5')
    msgs = []   # interleave threads: round r of every thread, r = 0..3
    for r in range(4):
        for t in range(len(THREADS)):
            msgs.append((t, r))
    state = {}
    try:
        with capture(os.path.join(HERE, rec.capture), [587]):
            for k, (t, r) in enumerate(msgs):
                subj0, who, outside = THREADS[t]
                acct, ip, cs, mech, pfx = STAFF[who[r]]
                user = '%s@%s' % (acct, DOMAIN)
                others = []
                for w in who:
                    a = '%s@%s' % (STAFF[w][0], DOMAIN)
                    if a != user and a not in others:
                        others.append(a)
                rcpts = others[:2] + ([outside] if outside and r in (0, 2) else [])
                subj = subj0 if r == 0 else pfx + subj0
                raw = subject_header(subj0, cs, '' if r == 0 else pfx)
                mid = '<2025100%d%02d%02d00.%04d.%s@pref.example.jp>' % (6 + r, 9 + t, k % 60, 3000 + k, acct)
                refs = state.get(t, [])
                hdrs = [('Date', '%s, 0%d Oct 2025 %02d:%02d:00 +0900' % (['Mon', 'Tue', 'Wed', 'Thu'][r], 6 + r, 9 + t, k % 60)),
                        ('From', '%s <%s>' % (acct.split('.')[0].title(), user)),
                        ('To', ', '.join(rcpts)), ('Subject', raw), ('Message-ID', mid)]
                if refs:
                    hdrs += [('In-Reply-To', refs[-1]), ('References', '\n '.join(refs))]
                body = '%s\n\n%sの件、よろしくお願いいたします。\n' % (
                    '関係各位' if r == 0 else 'ご返信ありがとうございます。', subj0)
                s = rec.connect(ip, 55001 + k, 587, 'pc-%s.pref.example.jp' % ip.split('.')[-1])
                assert rec.auth(s, mech, user, STAFF_PW[acct], initial=True)
                rec.send(s, user, rcpts, build(hdrs, body, cs), {
                    'from': '%s <%s>' % (acct.split('.')[0].title(), user), 'subject': subj,
                    'subject_raw': unfold(raw), 'message_id': mid,
                    'in_reply_to': refs[-1] if refs else None,
                    'references': ' '.join(refs) if refs else None, 'attachments': []})
                smtp_quit(s)
                state[t] = refs + [mid]
    finally:
        srv.stop()
    rec.facts(notes='One SMTP session per message (MUA behaviour). Messages go round-robin over the 10 threads: messages 1-10 '
                    'start the threads, 11-40 are replies whose In-Reply-To is the previous message of the same thread and whose '
                    'References lists all earlier message-ids of the thread. Outside recipients appear in rounds 1 and 3 of threads '
                    '4, 8 and 10 (6 messages). Nothing here should raise an alert.')


@scenario
def benign_newsletter():
    rng = random.Random(20251005)
    rec = Recorder('benign-newsletter', 'benign-newsletter.pcap',
                   'A legitimate newsletter: koho-news@pref.example.jp on 10.1.2.40, AUTH PLAIN on 587, one session with '
                   '3 messages of 20 recipients each (60 distinct subscribers), same ISO-2022-JP subject, List-Unsubscribe.')
    user, pw = 'koho-news@pref.example.jp', 'News-koho-pw-5e1'
    srv = submission_server({user: pw}, 'N5')
    subs = []
    doms = ['example.com', 'example.net', 'example.org', 'mail.example.co.jp', 'example.ne.jp', 'pref.example.jp']
    while len(subs) < 60:
        a = 'subscriber%02d.%s@%s' % (len(subs) + 1, rng.choice(FIRST), rng.choice(doms))
        subs.append(a)
    subj = '【ぷれふ広報】メールマガジン 2025年10月号'
    raw = subject_header(subj, 'ISO-2022-JP')
    try:
        with capture(os.path.join(HERE, rec.capture), [587]):
            s = rec.connect('10.1.2.40', 56001, 587, 'news-pc.pref.example.jp')
            assert rec.auth(s, 'PLAIN', user, pw, initial=True)
            for part in range(3):
                mid = '<mm202510.part%d@pref.example.jp>' % (part + 1)
                frm = '%s <%s>' % (enc_words('ぷれふ広報課', 'ISO-2022-JP'), user)
                hdrs = [('Date', 'Fri, 10 Oct 2025 12:00:0%d +0900' % part), ('From', frm),
                        ('To', user), ('Subject', raw), ('Message-ID', mid),
                        ('List-Unsubscribe', '<mailto:koho-news-unsubscribe@pref.example.jp>')]
                body = 'ぷれふ広報メールマガジン 10月号をお届けします。\n\n・防災訓練のお知らせ\n・県民アンケートの結果\n'
                rec.send(s, user, subs[part * 20:(part + 1) * 20], build(hdrs, body, 'ISO-2022-JP'), {
                    'from': frm, 'subject': subj, 'subject_raw': unfold(raw), 'message_id': mid,
                    'in_reply_to': None, 'references': None, 'attachments': []})
            smtp_quit(s)
    finally:
        srv.stop()
    rec.facts(notes='3 transactions in one session, 20 RCPT each, all accepted; the To header is the list address itself '
                    '(subscribers are only in the envelope). Below every limit: 3 messages, 60 recipients, 1 subject x3.')


def main():
    enter_client_ns()
    names = sys.argv[1:] or list(SCENARIOS)
    for n in names:
        log('==', n)
        SCENARIOS[n]()


if __name__ == '__main__':
    main()
