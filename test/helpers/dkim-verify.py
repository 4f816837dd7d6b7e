"""Verifies DKIM signatures with dkimpy, an implementation independent of the libraries mailwheel
signs with (nodemailer, mailauth). Reads a JSON document on stdin:
  {"records": {"<selector>._domainkey.<domain>.": "v=DKIM1; ..."}, "messages": ["<raw>", ...]}
and prints one JSON list: per message, one boolean per DKIM-Signature field (in order).
DNS is never asked: the TXT records come from the test, which generated the keys."""
import json
import sys

import dkim

doc = json.load(sys.stdin)
records = {k.rstrip('.').lower(): v.encode() for k, v in doc['records'].items()}


def dnsfunc(name, timeout=5):
    key = (name.decode() if isinstance(name, bytes) else name).rstrip('.').lower()
    return records.get(key)


def passes(d, i):
    # A mismatch is sometimes False and sometimes a ValidationError (e.g. the body hash): both fail.
    try:
        return bool(d.verify(idx=i, dnsfunc=dnsfunc))
    except dkim.DKIMException:
        return False


out = []
for raw in doc['messages']:
    d = dkim.DKIM(raw.encode('latin-1'))
    count = sum(1 for h in d.headers if h[0].lower() == b'dkim-signature')
    out.append([passes(d, i) for i in range(count)])
print(json.dumps(out))
