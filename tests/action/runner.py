"""Parsers that read runner files and logs the way the Actions runner does.

Written from the runner's documented behaviour (file commands and workflow
commands), independent of gate/github.py, so the tests check the adapter
against the protocol rather than against itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class RunnerParseError(ValueError):
    pass


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT: `name=value` lines and `name<<DELIMITER` heredocs.

    A heredoc's value is every line up to a line equal to the delimiter; an
    unterminated heredoc fails the step on the runner, so it raises here.
    """
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index].removesuffix("\r")
        index += 1
        if not line:
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2:]
            if not delimiter:
                raise RunnerParseError(f"empty delimiter for {name!r}")
            value_lines = []
            while True:
                if index >= len(lines):
                    raise RunnerParseError(f"delimiter {delimiter!r} for {name!r} not found")
                current = lines[index].removesuffix("\r")
                index += 1
                if current == delimiter:
                    break
                value_lines.append(current)
            outputs[name] = "\n".join(value_lines)
        elif equals > 0:
            outputs[line[:equals]] = line[equals + 1:]
        else:
            raise RunnerParseError(f"invalid output line {line!r}")
    return outputs


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


@dataclass
class Command:
    name: str
    message: str
    properties: dict[str, str] = field(default_factory=dict)


COMMAND_LINE = re.compile(r"^::(?P<name>[A-Za-z0-9_-]+)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def parse_commands(log: str) -> list[Command]:
    """Workflow commands in a step's stdout, honouring ::stop-commands::."""
    commands: list[Command] = []
    stopped_by: str | None = None
    for raw in log.splitlines():
        line = raw.strip()
        if stopped_by is not None:
            if line == f"::{stopped_by}::":
                stopped_by = None
            continue
        match = COMMAND_LINE.match(line)
        if not match:
            continue
        name = match["name"]
        if name == "stop-commands":
            stopped_by = match["data"]
            continue
        props: dict[str, str] = {}
        for pair in filter(None, (match["props"] or "").split(",")):
            key, _, value = pair.partition("=")
            props[key] = _unescape_property(value)
        commands.append(Command(name, _unescape_data(match["data"]), props))
    return commands
