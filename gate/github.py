"""The GitHub Actions runner protocol, as pure helpers.

Inputs come in as INPUT_* environment variables, outputs go to the file named
by GITHUB_OUTPUT, the step summary to GITHUB_STEP_SUMMARY, and everything
else (annotations, masks, log groups) is a "workflow command" printed on
stdout. Every function here builds or parses text; the only I/O is appending
to a file that the caller names, so the adapter in gate/action.py stays thin
and these rules are tested on their own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping

from gate.errors import InfraError, UsageError

# The runner rejects a step summary larger than this (1 MiB per step).
SUMMARY_LIMIT_BYTES = 1024 * 1024
# GitHub shows at most 10 annotations of each kind per step; more only hides the rest.
ANNOTATION_LIMIT = 10

TRUE_WORDS = ("true", "True", "TRUE")  # what @actions/core getBooleanInput accepts
FALSE_WORDS = ("false", "False", "FALSE")


def input_env_names(name: str) -> list[str]:
    """Environment variable names an input may arrive under.

    The runner upper-cases the name and turns spaces into underscores but
    keeps hyphens (INPUT_MODEL-URI). A shell cannot export such a name, so a
    local `docker run -e INPUT_MODEL_URI=...` spelling is accepted too.
    """
    runner_name = "INPUT_" + name.replace(" ", "_").upper()
    local_name = runner_name.replace("-", "_")
    return [runner_name] if local_name == runner_name else [runner_name, local_name]


def get_input(env: Mapping[str, str], name: str, *, required: bool = False) -> str:
    """An input's value, whitespace-trimmed; '' when unset and not required.

    `required: true` in action.yml is not enforced by the runner, so it is
    checked here.
    """
    for variable in input_env_names(name):
        value = env.get(variable)
        if value is not None and value.strip():
            return value.strip()
    if required:
        raise UsageError(f"input '{name}' is required and was not supplied")
    return ""


def get_bool_input(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """A true/false input; `default` only when no variable for it is set at all.

    The runner passes action.yml's default for an input the workflow leaves
    out, so an empty value was given empty, typically `${{ vars.UNSET }}`.
    Reading that as the default could turn a dry run into a promotion, so it
    is refused. A local `docker run` that omits the variable gets the default.
    """
    given = [env[variable].strip() for variable in input_env_names(name) if variable in env]
    if not given:
        return default
    return parse_bool(name, next((value for value in given if value), ""))


def parse_bool(name: str, value: str) -> bool:
    """The YAML 1.2 core booleans that @actions/core accepts, nothing else ('' included)."""
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise UsageError(f"input '{name}' must be true or false, got {value!r}")


# --- workflow commands -------------------------------------------------------

def escape_data(text: str) -> str:
    """Escape a command's message so it stays on one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value; ':' and ',' would end it early."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str = "", **properties: object) -> str:
    """One `::command key=value,...::message` line (without the newline)."""
    props = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in properties.items() if value not in (None, "")
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def mask_commands(secret: str) -> list[str]:
    """`::add-mask::` for each line of a secret.

    The runner masks line by line, so a multi-line secret (a PEM key) needs
    one command per line; blank lines are skipped, masking '' would be noise.
    """
    return [f"::add-mask::{escape_data(line)}" for line in secret.splitlines() if line.strip()]


def new_token() -> str:
    """A random delimiter or stop-commands token nobody can predict."""
    return "ghadelimiter_" + secrets.token_hex(16)


def annotation_commands(entries: Iterable[tuple[str, str, str]], limit: int = ANNOTATION_LIMIT) -> list[str]:
    """Error and warning annotations, at most `limit` of each, then one summary line.

    entries are (level, title, message) with level "error" or "warning".
    """
    lines: list[str] = []
    shown = {"error": 0, "warning": 0}
    hidden = {"error": 0, "warning": 0}
    for level, title, message in entries:
        if level not in shown:
            raise ValueError(f"annotation level must be error or warning, got {level!r}")
        if shown[level] < limit:
            shown[level] += 1
            lines.append(workflow_command(level, message, title=title))
        else:
            hidden[level] += 1
    for level in ("error", "warning"):
        if hidden[level]:
            noun = "errors" if level == "error" else "warnings"
            lines.append(workflow_command(level, f"{hidden[level]} more {noun} not shown; see the step summary "
                                                 "and the report artifact", title="model-gate"))
    return lines


# --- file commands -----------------------------------------------------------

def format_output(name: str, value: str, token: Callable[[], str] = new_token) -> str:
    """One heredoc entry for GITHUB_OUTPUT: `name<<D`, the value, `D`.

    A fresh random delimiter per value; the newline before the closing
    delimiter is required. A value that contains the delimiter would end the
    entry early and forge the next one, so it is refused.
    """
    if not name or any(c in name for c in "\r\n") or "<<" in name or "=" in name:
        raise ValueError(f"invalid output name {name!r}")
    delimiter = token()
    if delimiter in value:
        raise ValueError(f"the value of output {name!r} contains its delimiter; refusing to write it")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


class RunnerFileError(InfraError):
    """A runner file cannot be written: the step cannot hand over its results."""


def append(path: str, text: str, *, variable: str) -> None:
    """Append to the runner file that `variable` (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) names.

    Appending '' creates the file and writes nothing: a check, before the gate
    runs, that the results will have somewhere to go.
    """
    try:
        with open(path, "a", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as error:
        raise RunnerFileError(f"cannot write {variable} {path}: {error.strerror or error}") from None


def truncate_summary(markdown: str, limit: int = SUMMARY_LIMIT_BYTES) -> str:
    """Keep the summary under the runner's limit, cut on a line, with a note."""
    data = markdown.encode("utf-8")
    if len(data) <= limit:
        return markdown
    note = "\n\n> **Truncated:** the report was larger than GitHub's 1 MiB step summary limit; " \
           "the full report is in the report artifact.\n"
    room = limit - len(note.encode("utf-8")) - 1
    cut = data[:room].decode("utf-8", errors="ignore")
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    return cut + note
