#!/usr/bin/python3
# Cross-check the hand-written *.expect.json / *.facts.json against the
# captures.  TCP reassembly is tshark's ("-z follow,tcp,raw"); the SMTP walk
# and the MIME decoding (Python's email package) below are a deliberately
# simple second opinion, used only to catch mistakes in the expect files —
# the expect files themselves were written from what the clients sent.
#
#   /usr/bin/python3 verify.py [FILE.expect.json ...]     (default: all here)
#
# Exit status 1 if anything differs.

import base64
import email
import email.header
import email.policy
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tshark(*args):
    return subprocess.run(['tshark', *args], capture_output=True, text=True).stdout


def streams(path):
    ids = sorted({int(x) for x in tshark('-r', path, '-T', 'fields', '-e', 'tcp.stream').split()
                  if x.strip()})
    out = []
    for i in ids:
        txt = tshark('-r', path, '-q', '-z', 'follow,tcp,raw,%d' % i)
        nodes, c2s, s2c = [], bytearray(), bytearray()
        for line in txt.splitlines():
            m = re.match(r'Node [01]: \[?([0-9a-fA-F.:]+?)\]?:(\d+)$', line)
            if m:
                nodes.append((m.group(1), int(m.group(2))))
                continue
            if not line.strip() or line.startswith(('=', 'Follow', 'Filter')):
                continue
            if line.startswith('\t'):
                s2c += bytes.fromhex(line.strip())
            else:
                c2s += bytes.fromhex(line.strip())
        if len(nodes) == 2:
            out.append({'client': nodes[0], 'server': nodes[1],
                        'c2s': bytes(c2s), 's2c': bytes(s2c)})
    return out


def replies(s2c):
    out, cur = [], []
    for line in s2c.split(b'\r\n'):
        if len(line) < 3 or not line[:3].isdigit():
            continue
        cur.append(line.decode('utf-8', 'replace'))
        if line[3:4] != b'-':
            out.append((int(line[:3]), cur))
            cur = []
    return out


def tok(arg):
    """Text after FROM:/TO: up to the first blank (Zeek style)."""
    return arg.split(':', 1)[1].split(' ')[0] if ':' in arg else None


def auth_user(mech, first, resp):
    try:
        if mech == 'PLAIN':
            return base64.b64decode(first or resp[0]).split(b'\0')[1].decode()
        if mech == 'LOGIN':
            return base64.b64decode(first or resp[0]).decode()
        if mech == 'CRAM-MD5':
            return base64.b64decode(resp[0]).decode().rsplit(' ', 1)[0]
        if mech == 'XOAUTH2':
            raw = base64.b64decode(first or resp[0]).decode()
            return dict(f.split('=', 1) for f in raw.split('\x01') if '=' in f)['user']
    except Exception:
        return '?'


def walk(st):
    """Return (transactions, connection-info) seen in one TCP stream."""
    c, reps = st['c2s'], replies(st['s2c'])
    ri = 0

    def reply():
        nonlocal ri
        if ri < len(reps):
            ri += 1
            return reps[ri - 1]
        return None

    greet = reply()
    if greet is not None and greet[0] != 220:       # implicit TLS etc.
        ri = 0
    conn = {'helo': None, 'auth_user': None, 'auth_mech': None, 'tls': False, 'auth_events': []}
    txns, cur, pos, mail_no = [], None, 0, 0

    def close(t):
        if t is not None:
            txns.append(t)

    while pos < len(c):
        nl = c.find(b'\r\n', pos)
        if nl < 0:
            break
        line = c[pos:nl].decode('utf-8', 'replace')
        pos = nl + 2
        verb = line.split(' ', 1)[0].upper()
        arg = line.split(' ', 1)[1] if ' ' in line else ''
        if verb in ('EHLO', 'HELO'):
            conn['helo'] = arg
            reply()
        elif verb == 'AUTH':
            parts = arg.split()
            mech, first = parts[0].upper(), parts[1] if len(parts) > 1 else None
            resp = []
            r = reply()
            while r and r[0] == 334:
                nl = c.find(b'\r\n', pos)
                resp.append(c[pos:nl].decode())
                pos = nl + 2
                r = reply()
            user = auth_user(mech, first, resp)
            conn['auth_events'].append({'mech': mech, 'user': user,
                                        'reply': r[1][-1] if r else None})
            if r and r[0] == 235:
                conn['auth_user'], conn['auth_mech'] = user, mech
        elif verb == 'STARTTLS':
            r = reply()
            if r and r[0] == 220:
                conn['tls'] = True
                break
        elif verb == 'MAIL':
            close(cur)
            mail_no += 1
            r = reply()
            cur = {'orig_h': st['client'][0], 'orig_p': st['client'][1],
                   'resp_h': st['server'][0], 'resp_p': st['server'][1],
                   'trans_depth': mail_no, 'helo': conn['helo'],
                   'auth_user': conn['auth_user'], 'auth_mech': conn['auth_mech'],
                   'mailfrom': tok(arg), 'rcptto': [], 'rcptto_rejected': [],
                   'content': None, 'completed': False, 'tls': False,
                   'last_reply': r[1][-1] if r else None}
        elif verb == 'RCPT' and cur is not None:
            r = reply()
            cur['rcptto'].append(tok(arg))
            if r and r[0] >= 400:
                cur['rcptto_rejected'].append(tok(arg))
            if r:
                cur['last_reply'] = r[1][-1]
        elif verb == 'DATA' and cur is not None:
            r = reply()
            if r:
                cur['last_reply'] = r[1][-1]
            if r is None or r[0] == 354:
                end = c.find(b'\r\n.\r\n', pos - 2)
                body = c[pos:end + 2] if end >= 0 else c[pos:]
                pos = end + 5 if end >= 0 else len(c)
                lines = body.split(b'\r\n')
                cur['content'] = b'\r\n'.join(l[1:] if l.startswith(b'.') else l for l in lines)
                r = reply()
                if r:
                    cur['last_reply'] = r[1][-1]
                cur['completed'] = (r is not None and r[0] == 250) or (r is None and end >= 0)
                close(cur)
                cur = None
        elif verb == 'BDAT' and cur is not None:
            n = int(arg.split()[0])
            cur['content'] = (cur['content'] or b'') + c[pos:pos + n]
            pos += n
            r = reply()
            if r:
                cur['last_reply'] = r[1][-1]
            if arg.upper().endswith('LAST'):
                cur['completed'] = r is not None and r[0] == 250
                close(cur)
                cur = None
        elif verb in ('RSET', 'QUIT', 'NOOP', 'VRFY', 'HELP'):
            reply()
            if verb in ('RSET', 'QUIT'):
                close(cur)
                cur = None
        else:
            reply()
    close(cur)
    return txns, conn


def unfold(v):
    return re.sub(r'\r?\n(?=[ \t])', '', v)


def headers(content):
    head = content.split(b'\r\n\r\n', 1)[0].decode('utf-8', 'replace')
    out = {}
    for h in re.split(r'\r\n(?![ \t])', head):
        if ':' in h:
            k, v = h.split(':', 1)
            out.setdefault(k.strip().lower(), unfold(v).strip())
    return out


def decode_words(raw):
    if raw is None:
        return None
    if '\x1b$B' in raw and '=?' not in raw:
        return raw.encode().decode('iso2022_jp')
    return str(email.header.make_header(email.header.decode_header(raw)))


def attachments(content):
    msg = email.message_from_bytes(content, policy=email.policy.default)
    names = []
    for part in msg.walk():
        fn = part.get_filename()
        if fn is None and part.get_param('name') is not None:
            fn = part.get_param('name')
        if fn is not None:
            names.append(str(email.header.make_header(email.header.decode_header(fn)))
                         if '=?' in fn else fn)
    return names


def observed(path):
    txns, conns = [], []
    for st in streams(path):
        t, conn = walk(st)
        conns.append((st, conn))
        for x in t:
            h = headers(x['content']) if x['content'] else {}
            x['rcpt_rejected'] = len(x['rcptto_rejected'])
            x['from'] = h.get('from')
            x['from_decoded'] = decode_words(h.get('from'))
            x['to'] = h.get('to')
            x['subject_raw'] = h.get('subject')
            x['subject'] = decode_words(h.get('subject'))
            x['message_id'] = h.get('message-id')
            x['in_reply_to'] = h.get('in-reply-to')
            x['attachments'] = attachments(x['content']) if x['content'] else []
            txns.append(x)
        if conn['tls']:
            txns.append({'orig_h': st['client'][0], 'orig_p': st['client'][1],
                         'resp_h': st['server'][0], 'resp_p': st['server'][1],
                         'trans_depth': 1, 'helo': conn['helo'], 'tls': True})
    return txns, conns


CHECK_SKIP = {'notes', 'completed_note'}


def check_expect(path):
    exp = json.load(open(path))
    cap = os.path.join(os.path.dirname(path), exp['capture'])
    txns, conns = observed(cap)
    errs = []
    skip = set(exp.get('verify_skip', []))
    if len(txns) != len(exp['transactions']):
        errs.append('transactions: expected %d, found %d' % (len(exp['transactions']), len(txns)))
    for i, (e, o) in enumerate(zip(exp['transactions'], txns)):
        for k, v in e.items():
            if k in CHECK_SKIP or k in skip or k not in o:
                continue
            if o[k] != v:
                errs.append('txn %d %s: expected %r, found %r' % (i + 1, k, v, o[k]))
    # secrets: each one was really used on the wire (or is documented as not visible)
    blob = b''.join(st['c2s'] for st, _ in conns)
    decoded = []
    for t in re.findall(rb'[A-Za-z0-9+/=]{8,}', blob):
        try:
            decoded.append(base64.b64decode(t + b'=' * (-len(t) % 4)))
        except Exception:
            pass
    for s in exp.get('secrets', []):
        if s in exp.get('secrets_not_on_wire', []):
            if any(s.encode() in d for d in decoded) or s.encode() in blob:
                errs.append('secret %r is on the wire after all' % s)
            continue
        if not any(s.encode() in d for d in decoded):
            errs.append('secret %r not found (base64) in client data' % s)
    ev = exp.get('auth_events')
    if ev is not None and 'auth_events' not in skip:
        got = [a for _, c in conns for a in c['auth_events']]
        if got != ev:
            errs.append('auth_events: expected %r, found %r' % (ev, got))
    return errs


def main():
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, '*.expect.json')))
    bad = 0
    for f in files:
        errs = check_expect(f)
        print('%-40s %s' % (os.path.basename(f), 'ok' if not errs else 'MISMATCH'))
        for e in errs:
            print('    ' + e)
        bad += bool(errs)
    print('%d passed, %d failed' % (len(files) - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
