"""The runner-protocol helpers, read back with parsers that behave like the runner."""

from __future__ import annotations

import pytest
from runner import RunnerParseError, parse_commands, parse_output_file

from gate import github
from gate.errors import UsageError


def test_input_names_keep_hyphens_and_accept_the_underscore_spelling():
    assert github.input_env_names("model-uri") == ["INPUT_MODEL-URI", "INPUT_MODEL_URI"]
    assert github.input_env_names("policy") == ["INPUT_POLICY"]
    assert github.input_env_names("report dir") == ["INPUT_REPORT_DIR"]
    assert github.get_input({"INPUT_MODEL-URI": " models:/a/1 "}, "model-uri") == "models:/a/1"
    assert github.get_input({"INPUT_MODEL_URI": "models:/a/2"}, "model-uri") == "models:/a/2"
    # The runner sets every declared input, '' when unset: the local spelling then still counts.
    assert github.get_input({"INPUT_MODEL-URI": "", "INPUT_MODEL_URI": "models:/a/3"}, "model-uri") == "models:/a/3"


def test_required_input_is_enforced_here_because_the_runner_does_not():
    with pytest.raises(UsageError, match="input 'policy' is required"):
        github.get_input({"INPUT_POLICY": "  "}, "policy", required=True)
    assert github.get_input({}, "policy") == ""


@pytest.mark.parametrize("word, expected", [("true", True), ("True", True), ("TRUE", True),
                                            ("false", False), ("False", False), ("FALSE", False)])
def test_booleans_accept_the_yaml_core_words(word, expected):
    assert github.parse_bool("dry-run", word) is expected


@pytest.mark.parametrize("word", ["yes", "1", "on", "tRue", "no", "0", ""])
def test_booleans_refuse_anything_else_naming_the_input(word):
    with pytest.raises(UsageError, match=f"input 'dry-run' must be true or false, got '{word}'"):
        github.parse_bool("dry-run", word)


def test_a_boolean_input_that_is_absent_takes_its_default():
    # A local `docker run` without the variable; the runner itself always passes action.yml's default.
    assert github.get_bool_input({}, "dry-run", default=False) is False
    assert github.get_bool_input({}, "dry-run", default=True) is True
    assert github.get_bool_input({"INPUT_DRY_RUN": "TRUE"}, "dry-run", default=False) is True
    assert github.get_bool_input({"INPUT_DRY-RUN": "", "INPUT_DRY_RUN": "true"}, "dry-run", default=False) is True


@pytest.mark.parametrize("env", [{"INPUT_DRY-RUN": ""}, {"INPUT_DRY-RUN": "  "}, {"INPUT_DRY_RUN": ""},
                                 {"INPUT_DRY-RUN": "", "INPUT_DRY_RUN": ""}])
def test_a_boolean_input_given_empty_is_refused_not_read_as_its_default(env):
    # `dry-run: ${{ vars.UNSET }}` arrives as ''; reading it as false would promote.
    for default in (False, True):
        with pytest.raises(UsageError, match="input 'dry-run' must be true or false, got ''"):
            github.get_bool_input(env, "dry-run", default=default)


def test_a_runner_file_that_cannot_be_written_is_an_infrastructure_error_naming_it(tmp_path):
    with pytest.raises(github.RunnerFileError) as missing:
        github.append(str(tmp_path / "gone" / "out"), "x", variable="GITHUB_OUTPUT")
    assert str(missing.value) == f"cannot write GITHUB_OUTPUT {tmp_path}/gone/out: No such file or directory"
    assert missing.value.exit_code == 3
    with pytest.raises(github.RunnerFileError, match="cannot write GITHUB_STEP_SUMMARY .*: Is a directory"):
        github.append(str(tmp_path), "x", variable="GITHUB_STEP_SUMMARY")
    target = tmp_path / "out"
    github.append(str(target), "", variable="GITHUB_OUTPUT")  # the pre-flight: creates, writes nothing
    github.append(str(target), "a=1\n", variable="GITHUB_OUTPUT")
    assert target.read_text() == "a=1\n"


def test_outputs_round_trip_through_the_runner_parser_with_multiline_and_hostile_values():
    values = {
        "decision": "promoted",
        "model-name": "iris\n::error::forged",
        "report-json": "a=b<<c",
        "empty": "",
        "multi": "line one\r\nline two\n",
    }
    text = "".join(github.format_output(name, value) for name, value in values.items())
    parsed = parse_output_file(text)
    assert parsed["decision"] == "promoted"
    assert parsed["model-name"] == "iris\n::error::forged"
    assert parsed["report-json"] == "a=b<<c"
    assert parsed["empty"] == ""
    # The runner strips a trailing CR from each line, as it does for CRLF output files.
    assert parsed["multi"] == "line one\nline two\n"
    assert set(parsed) == set(values)


def test_each_value_gets_its_own_random_delimiter():
    first, second = github.format_output("a", "1"), github.format_output("a", "1")
    assert first != second
    delimiter = first.splitlines()[0].split("<<", 1)[1]
    assert first == f"a<<{delimiter}\n1\n{delimiter}\n"  # a newline before the closing delimiter
    assert len(delimiter) > 32


def test_a_value_containing_its_delimiter_is_refused():
    with pytest.raises(ValueError, match="contains its delimiter"):
        github.format_output("x", "before\nFIXED\nafter", token=lambda: "FIXED")
    with pytest.raises(ValueError):
        github.format_output("bad\nname", "v")


def test_an_unterminated_heredoc_fails_like_on_the_runner():
    with pytest.raises(RunnerParseError):
        parse_output_file("x<<EOF\nvalue\n")


def test_escaped_messages_and_properties_cannot_forge_a_second_command():
    hostile = "iris\n::error::forged, with a::colon 100%\r"
    line = github.workflow_command("warning", hostile, title=hostile, file="a,b:c")
    assert "\n" not in line and "\r" not in line
    commands = parse_commands(line + "\n")
    assert len(commands) == 1
    assert commands[0].name == "warning"
    assert commands[0].message == hostile
    assert commands[0].properties == {"title": hostile, "file": "a,b:c"}


def test_at_most_ten_annotations_of_each_kind_then_one_summary_line():
    entries = [("error", f"e{i}", f"error {i}") for i in range(13)] + [("warning", "w", "warn")] * 3
    commands = parse_commands("\n".join(github.annotation_commands(entries)))
    errors = [c for c in commands if c.name == "error"]
    warnings = [c for c in commands if c.name == "warning"]
    assert [c.message for c in errors[:10]] == [f"error {i}" for i in range(10)]
    assert len(errors) == 11 and errors[10].message.startswith("3 more errors not shown")
    assert len(warnings) == 3


def test_multiline_secrets_are_masked_line_by_line():
    pem = "-----BEGIN KEY-----\nAAAA\n\nBBBB\n-----END KEY-----\n"
    assert github.mask_commands(pem) == [
        "::add-mask::-----BEGIN KEY-----", "::add-mask::AAAA", "::add-mask::BBBB", "::add-mask::-----END KEY-----",
    ]


def test_summary_is_cut_under_one_mebibyte_on_a_line_with_a_note():
    row = "| check | passed | ü |\n"
    markdown = row * (2 * github.SUMMARY_LIMIT_BYTES // len(row.encode()))
    cut = github.truncate_summary(markdown)
    assert len(cut.encode("utf-8")) <= github.SUMMARY_LIMIT_BYTES
    body, note = cut.split("\n\n> **Truncated:**")
    assert markdown.startswith(body) and body.endswith("ü |")
    assert "report artifact" in note
    assert github.truncate_summary("small\n") == "small\n"
