#!/usr/bin/env python3
"""Validate FHIR R4 (4.0.1) exports with an independent implementation: the models of the PyPI
package fhir.resources 6.4.0, the last release whose top-level models are R4 (6.5.0 moved them to
R4B 4.3.0; 7 and later are R5 with R4B and STU3 subpackages, no R4).

    validate.py [PATH ...] [--expect-invalid DIR]

PATH is a file or a directory (its *.json and *.ndjson files, not its subdirectories). A *.json
file holds one resource (a Bundle, usually); a *.ndjson file one resource per line. Every file
under --expect-invalid DIR must be REJECTED: those are deliberately broken fixtures that prove the
validator catches what it should.

Prints "ok FILE" or "INVALID FILE: reason" per file, then "N passed, N failed"; exit status 0
only if every file passed (and there was at least one).

On top of the models, which check structure, cardinality, types and primitive formats, these
rules of the R4 specification are checked here because the models do not:
- JSON: no NaN/Infinity (Python's json module would accept them), no duplicate keys, no null,
  no empty object, array or string (json.html; ele-1: every element has a value or children);
- the whole R4 grammar of dateTime and instant on the time elements of Bundle and Observation:
  fhir.resources 6.4.0 applies its regexes with re.match, i.e. to a prefix, and then lets
  pydantic parse the rest, so it accepts an offset of +15:00 that the grammar forbids (±14:00);
- pydantic (v1, under fhir.resources) coerces JSON types and the models skip value-set bindings,
  so "72" passes as a decimal and status "done" as a code: a Quantity's value must be a JSON
  number, and the required bindings Observation.status and Bundle.type are checked here;
- bdl-7: fullUrl unique within a Bundle (we give no versionIds);
- per-1: a Period's start is not after its end;
- obs-6: dataAbsentReason only without value[x]; obs-7: a component coded like the Observation
  itself has no value.
"""

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

try:
    import fhir.resources
    from fhir.resources import get_fhir_model_class
    from pydantic import ValidationError
except ImportError as e:  # the venv is not the one README.md sets up
    sys.exit(f"validate.py: cannot import fhir.resources ({e}); see tests/fhir/README.md for the venv")

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(
        f"validate.py: fhir.resources {fhir.resources.__version__} models FHIR "
        f"{fhir.resources.__fhir_version__}, not R4 4.0.1: install fhir.resources==6.4.0"
    )


class Invalid(Exception):
    pass


def reject_constant(name):
    raise Invalid(f"{name} is not a JSON number FHIR admits")


def no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise Invalid(f'duplicate key "{key}"')
        obj[key] = value
    return obj


def parse_json(text):
    try:
        return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise Invalid(f"not JSON: {e}") from None


def json_rules(value, path="$"):
    """FHIR's JSON representation: nothing null or empty."""
    if value is None:
        raise Invalid(f"{path}: null")
    if isinstance(value, dict):
        if not value:
            raise Invalid(f"{path}: empty object")
        for key, child in value.items():
            # Only the "_x" arrays of primitive extensions may hold null (for values without one).
            if key.startswith("_") and isinstance(child, list):
                for i, item in enumerate(child):
                    if item is not None:
                        json_rules(item, f"{path}.{key}[{i}]")
                continue
            json_rules(child, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            raise Invalid(f"{path}: empty array")
        for i, item in enumerate(value):
            json_rules(item, f"{path}[{i}]")
    elif isinstance(value, str) and not value.strip():
        raise Invalid(f"{path}: empty string")


# The R4 grammars (datatypes.html), matched in full.
DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)


# Required bindings (R4 valuesets observation-status and bundle-type).
OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                      "entered-in-error", "unknown"}
BUNDLE_TYPE = {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
               "history", "searchset", "collection"}


def code_in(value, codes, path):
    if value is not None and value not in codes:
        raise Invalid(f"{path}: {value!r} is not in the required value set")


def quantity_values(value, path):
    """A Quantity's value is a JSON number (decimal), never a string or a boolean."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key.endswith("Quantity") and isinstance(child, dict) and "value" in child:
                number = child["value"]
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise Invalid(f"{path}.{key}.value: {number!r} is not a JSON number")
            quantity_values(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            quantity_values(item, f"{path}[{i}]")


def grammar(value, pattern, path):
    if isinstance(value, str) and not pattern.fullmatch(value):
        name = "instant" if pattern is INSTANT else "dateTime"
        raise Invalid(f"{path}: {value!r} is not an R4 {name}")


def instant(text):
    """A dateTime with a time part as an aware datetime (partial dates are not compared)."""
    if "T" not in text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def invariants(resource, path):
    kind = resource.get("resourceType")
    grammar(resource.get("meta", {}).get("lastUpdated"), INSTANT, f"{path}.meta.lastUpdated")
    if kind == "Bundle":
        code_in(resource.get("type"), BUNDLE_TYPE, f"{path}.type")
        grammar(resource.get("timestamp"), INSTANT, f"{path}.timestamp")
        seen = set()
        for i, entry in enumerate(resource.get("entry", [])):
            url = entry.get("fullUrl")
            if url is not None:
                if url in seen:
                    raise Invalid(f"{path}.entry[{i}]: fullUrl {url} is not unique (bdl-7)")
                seen.add(url)
            if isinstance(entry.get("resource"), dict):
                invariants(entry["resource"], f"{path}.entry[{i}].resource")
    elif kind == "Observation":
        code_in(resource.get("status"), OBSERVATION_STATUS, f"{path}.status")
        quantity_values(resource, path)
        grammar(resource.get("effectiveDateTime"), DATE_TIME, f"{path}.effectiveDateTime")
        grammar(resource.get("effectiveInstant"), INSTANT, f"{path}.effectiveInstant")
        grammar(resource.get("issued"), INSTANT, f"{path}.issued")
        for end in ("start", "end"):
            grammar(resource.get("effectivePeriod", {}).get(end), DATE_TIME, f"{path}.effectivePeriod.{end}")
        period = resource.get("effectivePeriod")
        if period and "start" in period and "end" in period:
            start, end = instant(period["start"]), instant(period["end"])
            if start and end and start > end:
                raise Invalid(f"{path}.effectivePeriod: start after end (per-1)")
        has_value = any(k.startswith("value") for k in resource)
        if has_value and "dataAbsentReason" in resource:
            raise Invalid(f"{path}: dataAbsentReason with a value (obs-6)")
        codes = {(c.get("system"), c.get("code")) for c in resource.get("code", {}).get("coding", [])}
        for i, component in enumerate(resource.get("component", [])):
            component_codes = {(c.get("system"), c.get("code")) for c in component.get("code", {}).get("coding", [])}
            if codes & component_codes and has_value:
                raise Invalid(f"{path}.component[{i}]: coded like the Observation, which has a value (obs-7)")


def one_line(error):
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def validate_resource(resource, path="$"):
    if not isinstance(resource, dict):
        raise Invalid(f"{path}: not a JSON object")
    json_rules(resource, path)
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        raise Invalid(f"{path}: no resourceType")
    try:
        model = get_fhir_model_class(kind)
    except KeyError:
        raise Invalid(f'{path}: "{kind}" is not an R4 resource type') from None
    try:
        model.parse_obj(resource)
    except ValidationError as e:
        raise Invalid(f"{path}: {one_line(e)}") from None
    invariants(resource, path)


def validate_file(file):
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".ndjson":
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        if not lines:
            raise Invalid("no resources")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                raise Invalid(f"line {n}: empty")
            try:
                validate_resource(parse_json(line))
            except Invalid as e:
                raise Invalid(f"line {n}: {e}") from None
    else:
        validate_resource(parse_json(text))


def files_of(path):
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".ndjson"))
    if path.is_file():
        return [path]
    raise SystemExit(f"validate.py: {path}: no such file or directory")


def main():
    parser = argparse.ArgumentParser(description="Validate FHIR R4 JSON/NDJSON with fhir.resources 6.4.0.")
    parser.add_argument("paths", nargs="*", help="files or directories that must validate")
    parser.add_argument("--expect-invalid", metavar="DIR", action="append", default=[],
                        help="files or directories whose every file must be rejected")
    args = parser.parse_args()

    passed = failed = 0
    for path in args.paths:
        for file in files_of(path):
            try:
                validate_file(file)
                print(f"ok {file}")
                passed += 1
            except (Invalid, UnicodeDecodeError) as e:
                print(f"INVALID {file}: {e}")
                failed += 1
    for path in args.expect_invalid:
        for file in files_of(path):
            try:
                validate_file(file)
                print(f"INVALID {file}: accepted, but it is a deliberately invalid fixture")
                failed += 1
            except (Invalid, UnicodeDecodeError) as e:
                print(f"ok {file} (rejected as expected: {e})")
                passed += 1
    print(f"{passed} passed, {failed} failed")
    if passed + failed == 0:
        print("validate.py: no *.json or *.ndjson file to validate", file=sys.stderr)
        return 1
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
