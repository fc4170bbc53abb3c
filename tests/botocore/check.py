#!/usr/bin/python3
"""Checks requests a hand-written AWS client sent, with botocore as the reference.

Reads one JSON document on standard input: {"cases": [...]}, each case either
  {"kind": "validate", "service": "batch", "operation": "SubmitJob", "body": {...}}
    -> botocore.validate against the service's official model (required members, types, enums, minimums,
       unknown members), after checking the operation's HTTP method and path;
  {"kind": "sign", "method", "url", "headers": {...}, "body": "<text>", "accessKey", "secretKey", "token",
   "region", "service", "timestamp": "20261122T152600Z"}
    -> the Authorization header botocore's SigV4Auth computes for that request at that time.
Writes {"results": [...]} in the same order: {"errors": "<botocore's report or empty>", "http": {...}} or
{"authorization": "..."}.
"""
import datetime
import json
import sys
import types

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.loaders
import botocore.model
import botocore.validate

_models = {}


def model(service):
    if service not in _models:
        loader = botocore.loaders.Loader()
        _models[service] = botocore.model.ServiceModel(loader.load_service_model(service, "service-2"), service)
    return _models[service]


def validate(case):
    operation = model(case["service"]).operation_model(case["operation"])
    body = case["body"]
    # REST-JSON members bound to the URI or headers are not in the body; the caller gives them apart.
    params = dict(body)
    params.update(case.get("uriParams", {}))
    report = botocore.validate.ParamValidator().validate(params, operation.input_shape)
    return {"errors": report.generate_report() if report.has_errors() else "", "http": operation.http}


def sign(case):
    fixed = datetime.datetime.strptime(case["timestamp"], "%Y%m%dT%H%M%SZ")

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

        @classmethod
        def now(cls, tz=None):
            return fixed

    # The signing time: botocore 1.29 (Debian 12) reads datetime.datetime.utcnow(), later ones get_current_datetime().
    botocore.auth.datetime = types.SimpleNamespace(datetime=Fixed, timezone=datetime.timezone, timedelta=datetime.timedelta)
    botocore.auth.get_current_datetime = lambda *args, **kwargs: fixed
    request = botocore.awsrequest.AWSRequest(
        method=case["method"], url=case["url"], headers=case["headers"], data=case["body"].encode("utf-8"))
    credentials = botocore.credentials.Credentials(case["accessKey"], case["secretKey"], case.get("token") or None)
    botocore.auth.SigV4Auth(credentials, case["service"], case["region"]).add_auth(request)
    return {"authorization": request.headers["Authorization"]}


def main():
    cases = json.load(sys.stdin)["cases"]
    results = [validate(c) if c["kind"] == "validate" else sign(c) for c in cases]
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
