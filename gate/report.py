"""Reports of a gate run: JSON (machines), Markdown (people, step summaries), JUnit XML (CI UIs), text.

Renderers are pure functions of the report dict; `write_reports` is the only I/O.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

STATUS_ICONS = {"passed": "✅", "failed": "❌", "warned": "⚠️", "skipped": "⏭️", "error": "💥"}
DECISION_TITLES = {
    "promoted": "✅ promoted", "dry-run-passed": "✅ passed (dry run, nothing promoted)",
    "passed": "✅ passed (not a registry version, nothing promoted)", "rejected": "❌ rejected",
    "error": "💥 could not complete",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible as strings
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(_jsonable(report), indent=2, sort_keys=False, default=str) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def _md_cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    model = report.get("model") or {}
    title = DECISION_TITLES.get(report["decision"], report["decision"])
    ident = f"{model.get('name')} version {model.get('version')}" if model.get("version") else model.get("uri", "")
    lines = [f"## model-gate: {title}", "", f"**Model:** `{ident}`  "]
    if report.get("previous_version") is not None or report["decision"] == "promoted":
        lines.append(f"**Previous champion:** {report.get('previous_version') or 'none'}  ")
    lines += [f"**Policy:** `{report['policy']['path']}` (sha256 `{report['policy']['sha256'][:12]}…`)  ",
              f"**Tracking URI:** {report.get('tracking_uri') or 'n/a'}  ",
              f"**Duration:** {report.get('duration_s', 0):.1f}s", ""]
    if report.get("error"):
        lines += [f"> **Error:** {report['error']}", ""]
    lines += ["| | Check | Value | Threshold | Baseline | Message |", "|---|---|---|---|---|---|"]
    for check in report["checks"]:
        threshold = check.get("threshold")
        if isinstance(threshold, dict):
            threshold = ", ".join(f"{k}={v}" for k, v in threshold.items()
                                  if k not in ("severity", "source", "on_missing_baseline"))
        lines.append(f"| {STATUS_ICONS.get(check['status'], '')} | `{check['name']}` | {_md_cell(check.get('value'))} "
                     f"| {_md_cell(threshold)} | {_md_cell(check.get('baseline'))} | {_md_cell(check['message'])} |")
    return "\n".join(lines) + "\n"


# Characters XML 1.0 does not allow at all, escaped or not (a model's error text can hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text))


def _xml_attr(text: str) -> str:
    return quoteattr(_NOT_XML.sub("\ufffd", text))


def render_junit(report: dict[str, Any]) -> str:
    checks = report["checks"]
    failures = sum(1 for c in checks if c["status"] == "failed")
    errors = sum(1 for c in checks if c["status"] == "error")
    skipped = sum(1 for c in checks if c["status"] == "skipped")
    model = report.get("model") or {}
    suite = f"model-gate {model.get('name') or model.get('uri', '')}".strip()
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuites name="model-gate" tests="{len(checks)}" failures="{failures}" errors="{errors}" '
           f'time="{report.get("duration_s", 0):.3f}">',
           f'  <testsuite name={_xml_attr(suite)} tests="{len(checks)}" failures="{failures}" errors="{errors}" '
           f'skipped="{skipped}" time="{report.get("duration_s", 0):.3f}">']
    for check in checks:
        out.append(f'    <testcase classname={_xml_attr("model-gate." + check["stage"])} name={_xml_attr(check["name"])} '
                   f'time="{check.get("duration_s", 0):.3f}">')
        message = _xml_attr(check["message"][:1000])
        if check["status"] == "failed":
            out.append(f"      <failure message={message}>{_xml_text(check['message'])}</failure>")
        elif check["status"] == "error":
            out.append(f"      <error message={message}>{_xml_text(check['message'])}</error>")
        elif check["status"] == "skipped":
            out.append(f"      <skipped message={message}/>")
        elif check["status"] == "warned":
            out.append(f"      <system-out>{_xml_text('WARNING: ' + check['message'])}</system-out>")
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>"]
    return "\n".join(out) + "\n"


def render_text(report: dict[str, Any]) -> str:
    model = report.get("model") or {}
    lines = [f"model-gate: {DECISION_TITLES.get(report['decision'], report['decision'])}: "
             f"{model.get('uri') or ''}" + (f" ({model['name']} version {model['version']})" if model.get("version") else "")]
    width = max((len(c["name"]) for c in report["checks"]), default=10)
    for check in report["checks"]:
        lines.append(f"  {check['status'].upper():8} {check['name']:<{width}}  {check['message']}")
    return "\n".join(lines) + "\n"  # an error goes to stderr once, from the CLI


RENDERERS = {"json": render_json, "markdown": render_markdown, "junit": render_junit, "text": render_text}


def report_paths(directory: Path) -> dict[str, Path]:
    return {"json": directory / "report.json", "markdown": directory / "report.md",
            "junit": directory / "report.junit.xml"}


def write_reports(report: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = report_paths(directory)
    for kind, path in files.items():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(RENDERERS[kind](report), encoding="utf-8")
        tmp.replace(path)  # never leave a half-written report under its final name
    return files
