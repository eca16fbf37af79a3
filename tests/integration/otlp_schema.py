"""Strict validation of an OTLP/JSON ExportLogsServiceRequest (opentelemetry-proto
collector/logs/v1, logs/v1, resource/v1, common/v1, in the OTLP/JSON mapping of
https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).

    errors = validate_export_logs_request(doc)   # [] when valid, else "$.path: problem"

Stricter than a protobuf JSON parser on purpose, matching what docs/sinks.md promises:
  - field names only in lowerCamelCase, and only those the messages define; unknown fields are
    errors (a receiver would drop them silently);
  - fixed64/int64/uint64 (timeUnixNano, observedTimeUnixNano, intValue) as decimal strings;
  - uint32/fixed32 (droppedAttributesCount, flags) as JSON integers in range;
  - severityNumber an integer 0..24 (enums as integers, as OTLP/JSON requires);
  - traceId/spanId hex strings of 32/16 digits (OTLP/JSON's exception to base64), or "";
  - AnyValue exactly one of stringValue, boolValue, intValue (string), doubleValue (number),
    arrayValue {values}, kvlistValue {values: [{key, value}]}, bytesValue (base64), or {}.
Resource's newer entityRefs (development status) is not accepted: ferry does not send it.
"""

import base64
import binascii
import re

__all__ = ["validate_export_logs_request", "validate_any_value"]

_DEC_U64 = re.compile(r"^(0|[1-9][0-9]*)$")
_DEC_I64 = re.compile(r"^-?(0|[1-9][0-9]*)$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")

U64_MAX = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U32_MAX = (1 << 32) - 1


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _V:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path, msg))

    def obj(self, v, path, allowed):
        """Checks v is an object with only `allowed` keys; returns True when it is an object."""
        if not isinstance(v, dict):
            self.err(path, "expected an object, got %s" % type(v).__name__)
            return False
        for k in v:
            if k not in allowed:
                self.err("%s.%s" % (path, k), "unknown field (allowed: %s)" % ", ".join(sorted(allowed)))
        return True

    def array(self, v, path, each):
        if not isinstance(v, list):
            self.err(path, "expected an array, got %s" % type(v).__name__)
            return
        for i, item in enumerate(v):
            each(item, "%s[%d]" % (path, i))

    def string(self, v, path):
        if not isinstance(v, str):
            self.err(path, "expected a string, got %s" % type(v).__name__)

    def u64_string(self, v, path):
        if not isinstance(v, str):
            self.err(path, "expected a 64-bit integer as a decimal string, got %s %r"
                     % (type(v).__name__, v))
        elif not _DEC_U64.match(v) or int(v) > U64_MAX:
            self.err(path, "not an unsigned 64-bit decimal string: %r" % v)

    def i64_string(self, v, path):
        if not isinstance(v, str):
            self.err(path, "expected a 64-bit integer as a decimal string, got %s %r"
                     % (type(v).__name__, v))
        elif not _DEC_I64.match(v) or not I64_MIN <= int(v) <= I64_MAX:
            self.err(path, "not a signed 64-bit decimal string: %r" % v)

    def u32(self, v, path):
        if not _is_int(v) or not 0 <= v <= U32_MAX:
            self.err(path, "expected an unsigned 32-bit integer, got %r" % (v,))

    def hex_id(self, v, path, nbytes):
        if not isinstance(v, str):
            self.err(path, "expected a hex string, got %s" % type(v).__name__)
        elif v and (len(v) != 2 * nbytes or not _HEX.match(v)):
            self.err(path, "expected %d hex digits or \"\", got %r" % (2 * nbytes, v))

    # -- common/v1 ---------------------------------------------------------------------------

    def any_value(self, v, path):
        allowed = {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue",
                   "kvlistValue", "bytesValue"}
        if not self.obj(v, path, allowed):
            return
        present = [k for k in v if k in allowed]
        if len(present) > 1:
            self.err(path, "AnyValue has more than one of %s" % ", ".join(present))
            return
        if not present:
            return  # an empty AnyValue (null)
        k = present[0]
        x = v[k]
        p = "%s.%s" % (path, k)
        if k == "stringValue":
            self.string(x, p)
        elif k == "boolValue":
            if not isinstance(x, bool):
                self.err(p, "expected a boolean, got %r" % (x,))
        elif k == "intValue":
            self.i64_string(x, p)
        elif k == "doubleValue":
            if not (_is_number(x) or x in ("NaN", "Infinity", "-Infinity")):
                self.err(p, "expected a number, got %r" % (x,))
        elif k == "arrayValue":
            if self.obj(x, p, {"values"}) and "values" in x:
                self.array(x["values"], p + ".values", self.any_value)
        elif k == "kvlistValue":
            if self.obj(x, p, {"values"}) and "values" in x:
                self.array(x["values"], p + ".values", self.key_value)
        elif k == "bytesValue":
            if not isinstance(x, str):
                self.err(p, "expected a base64 string, got %s" % type(x).__name__)
            else:
                try:
                    base64.b64decode(x, validate=True)
                except (binascii.Error, ValueError):
                    self.err(p, "not valid base64: %r" % x[:40])

    def key_value(self, v, path):
        if not self.obj(v, path, {"key", "value"}):
            return
        if "key" not in v:
            self.err(path, "KeyValue without key")
        else:
            self.string(v["key"], path + ".key")
        if "value" in v:
            self.any_value(v["value"], path + ".value")

    def attributes(self, v, path):
        self.array(v, path, self.key_value)
        if isinstance(v, list):
            seen = set()
            for i, kv in enumerate(v):
                if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                    if kv["key"] in seen:
                        self.err("%s[%d].key" % (path, i), "duplicate attribute key %r" % kv["key"])
                    seen.add(kv["key"])

    def scope(self, v, path):
        if not self.obj(v, path, {"name", "version", "attributes", "droppedAttributesCount"}):
            return
        for k in ("name", "version"):
            if k in v:
                self.string(v[k], "%s.%s" % (path, k))
        if "attributes" in v:
            self.attributes(v["attributes"], path + ".attributes")
        if "droppedAttributesCount" in v:
            self.u32(v["droppedAttributesCount"], path + ".droppedAttributesCount")

    # -- resource/v1 -------------------------------------------------------------------------

    def resource(self, v, path):
        if not self.obj(v, path, {"attributes", "droppedAttributesCount"}):
            return
        if "attributes" in v:
            self.attributes(v["attributes"], path + ".attributes")
        if "droppedAttributesCount" in v:
            self.u32(v["droppedAttributesCount"], path + ".droppedAttributesCount")

    # -- logs/v1 -----------------------------------------------------------------------------

    def log_record(self, v, path):
        allowed = {"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText",
                   "body", "attributes", "droppedAttributesCount", "flags", "traceId", "spanId",
                   "eventName"}
        if not self.obj(v, path, allowed):
            return
        for k in ("timeUnixNano", "observedTimeUnixNano"):
            if k in v:
                self.u64_string(v[k], "%s.%s" % (path, k))
        if "severityNumber" in v:
            sn = v["severityNumber"]
            if not _is_int(sn) or not 0 <= sn <= 24:
                self.err(path + ".severityNumber", "expected an integer 0..24, got %r" % (sn,))
        for k in ("severityText", "eventName"):
            if k in v:
                self.string(v[k], "%s.%s" % (path, k))
        if "body" in v:
            self.any_value(v["body"], path + ".body")
        if "attributes" in v:
            self.attributes(v["attributes"], path + ".attributes")
        if "droppedAttributesCount" in v:
            self.u32(v["droppedAttributesCount"], path + ".droppedAttributesCount")
        if "flags" in v:
            self.u32(v["flags"], path + ".flags")
        if "traceId" in v:
            self.hex_id(v["traceId"], path + ".traceId", 16)
        if "spanId" in v:
            self.hex_id(v["spanId"], path + ".spanId", 8)

    def scope_logs(self, v, path):
        if not self.obj(v, path, {"scope", "logRecords", "schemaUrl"}):
            return
        if "scope" in v:
            self.scope(v["scope"], path + ".scope")
        if "logRecords" in v:
            self.array(v["logRecords"], path + ".logRecords", self.log_record)
        if "schemaUrl" in v:
            self.string(v["schemaUrl"], path + ".schemaUrl")

    def resource_logs(self, v, path):
        if not self.obj(v, path, {"resource", "scopeLogs", "schemaUrl"}):
            return
        if "resource" in v:
            self.resource(v["resource"], path + ".resource")
        if "scopeLogs" in v:
            self.array(v["scopeLogs"], path + ".scopeLogs", self.scope_logs)
        if "schemaUrl" in v:
            self.string(v["schemaUrl"], path + ".schemaUrl")

    def request(self, v, path):
        if not self.obj(v, path, {"resourceLogs"}):
            return
        if "resourceLogs" in v:
            self.array(v["resourceLogs"], path + ".resourceLogs", self.resource_logs)


def validate_export_logs_request(doc):
    """[] when `doc` (parsed JSON) is a valid ExportLogsServiceRequest, else errors as
    "$.resourceLogs[0].scopeLogs[0].logRecords[3].timeUnixNano: ..."."""
    v = _V()
    v.request(doc, "$")
    return v.errors


def validate_any_value(doc, path="$"):
    v = _V()
    v.any_value(doc, path)
    return v.errors
