#!/usr/bin/python3
# Cross-check every NAME.facts.json against NAME.pcap: the message and AUTH
# events the client recorded must be what tshark's reassembly + the simple
# SMTP walk in ../captures/verify.py see in the capture.
#
#   /usr/bin/python3 verify_scenarios.py [FILE.facts.json ...]

import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'captures'))
import verify  # noqa: E402

KEYS = ['orig_h', 'orig_p', 'resp_h', 'resp_p', 'trans_depth', 'helo', 'auth_user', 'mailfrom',
        'rcptto', 'rcpt_rejected', 'from', 'subject', 'subject_raw', 'message_id', 'in_reply_to',
        'attachments', 'last_reply']


def check(path):
    f = json.load(open(path))
    txns, conns = verify.observed(os.path.join(HERE, f['capture']))
    errs = []
    msgs = [e for e in f['events'] if e['type'] == 'message']
    auths = [e for e in f['events'] if e['type'] == 'auth']
    if len(txns) != len(msgs) or len(msgs) != f['message_count']:
        errs.append('messages: facts %d/%d, capture %d' % (len(msgs), f['message_count'], len(txns)))
    for i, (e, o) in enumerate(zip(msgs, txns)):
        for k in KEYS:
            if e.get(k) != o.get(k):
                errs.append('message %d %s: facts %r, capture %r' % (i + 1, k, e.get(k), o.get(k)))
        if not o.get('completed'):
            errs.append('message %d not completed in capture' % (i + 1))
    got = [a for _, c in conns for a in c['auth_events']]
    want = [{'mech': a['mech'], 'user': a['user'], 'reply': a['reply']} for a in auths]
    if got != want:
        errs.append('auth events differ: facts %d, capture %d' % (len(want), len(got)))
        for i, (w, g) in enumerate(zip(want, got)):
            if w != g:
                errs.append('  auth %d: facts %r capture %r' % (i + 1, w, g))
    return errs


def main():
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, '*.facts.json')))
    bad = 0
    for p in files:
        errs = check(p)
        print('%-40s %s' % (os.path.basename(p), 'ok' if not errs else 'MISMATCH'))
        for e in errs[:30]:
            print('    ' + e)
        bad += bool(errs)
    print('%d passed, %d failed' % (len(files) - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
