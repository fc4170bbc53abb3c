#!/usr/bin/python3
"""Checks requests a hand-written AWS client sent, with botocore as the reference.

Reads one JSON document on standard input: {"cases": [...]}, each case either
  {"kind": "validate", "service": "batch", "operation": "SubmitJob", "body": {...}}
    -> botocore.validate against the service's official model (required members, types, minimums, unknown
       members), plus what it leaves out (enum values, maximums); and the operation's HTTP method and path;
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


def limits(value, shape, path, errors):
    """What botocore's validator leaves out: enum values and maximums (it checks types, required members, minimums)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                limits(value[name], member, f"{path}.{name}" if path else name, errors)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            errors.append(f"Invalid length for parameter {path}, length: {len(value)}, valid max length: {shape.metadata['max']}")
        for i, item in enumerate(value):
            limits(item, shape.member, f"{path}[{i}]", errors)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            limits(key, shape.key, f"{path} (key)", errors)
            limits(item, shape.value, f"{path}.{key}", errors)
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            errors.append(f"Invalid value for parameter {path}, value: {value}, valid values: {', '.join(shape.enum)}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            errors.append(f"Invalid length for parameter {path}, length: {len(value)}, valid max length: {shape.metadata['max']}")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in shape.metadata and value > shape.metadata["max"]:
            errors.append(f"Invalid range for parameter {path}, value: {value}, valid max value: {shape.metadata['max']}")


def validate(case):
    operation = model(case["service"]).operation_model(case["operation"])
    body = case["body"]
    # REST-JSON members bound to the URI or headers are not in the body; the caller gives them apart.
    params = dict(body)
    params.update(case.get("uriParams", {}))
    report = botocore.validate.ParamValidator().validate(params, operation.input_shape)
    errors = [report.generate_report()] if report.has_errors() else []
    limits(params, operation.input_shape, "", errors)
    return {"errors": "\n".join(errors), "http": operation.http}


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
