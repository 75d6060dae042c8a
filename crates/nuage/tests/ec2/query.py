#!/usr/bin/env python3
"""Sends one EC2 Query request signed with botocore's own SigV4 signer,
for the EC2 tests that must send what the aws CLI will not (unknown
actions, unknown parameters, wrong scopes, unsigned calls).

    query.py ENDPOINT '{"Action": "X", ...}' [--unsigned] [--region R]
             [--service S] [--secret S] [--get] [--date-offset SECONDS]

Credentials and region come from the environment (admin.env). Prints the
HTTP status on the first line, then the body.
"""
import argparse, json, os, sys, urllib.parse, urllib.request, urllib.error

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ap = argparse.ArgumentParser()
ap.add_argument("endpoint")
ap.add_argument("params")
ap.add_argument("--unsigned", action="store_true")
ap.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", ""))
ap.add_argument("--service", default="ec2")
ap.add_argument("--secret", default=os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
ap.add_argument("--get", action="store_true")
ap.add_argument("--date-offset", type=int, default=0,
                help="sign as if the clock were this many seconds off")
a = ap.parse_args()

if a.date_offset:
    import datetime
    import botocore.auth
    real_now = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = (
        lambda: real_now() + datetime.timedelta(seconds=a.date_offset))

params = json.loads(a.params)
params.setdefault("Version", "2016-11-15")
body = urllib.parse.urlencode(params)
url = a.endpoint.rstrip("/") + "/"
if a.get:
    req = AWSRequest(method="GET", url=url + "?" + body)
else:
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
if not a.unsigned:
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], a.secret)
    SigV4Auth(creds, a.service, a.region).add_auth(req)
prepared = req.prepare()
r = urllib.request.Request(prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
                           method=prepared.method, headers=dict(prepared.headers))
ctx = None
if url.startswith("https"):
    import ssl
    ctx = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
try:
    resp = urllib.request.urlopen(r, context=ctx, timeout=30)
    print(resp.status)
    sys.stdout.write(resp.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
    sys.stdout.write(e.read().decode())
