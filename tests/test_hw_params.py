"""hw.params: the one --params parser every command uses."""

import pytest

from hw.params import ParamsError, parse_params


def test_parses_inline_and_file(tmp_path):
    assert parse_params(None) is None and parse_params("") is None and parse_params("  ") is None
    assert parse_params('{"conv1": {"lanes": 2}, "fc1": {}}') == {"conv1": {"lanes": 2}, "fc1": {}}
    path = tmp_path / "params.json"
    path.write_text('{"fc1": {"lanes": 7}}\n')
    assert parse_params(str(path)) == {"fc1": {"lanes": 7}}


@pytest.mark.parametrize("text, message", [
    ("{nope", r"^--params is not valid JSON \(Expecting property name enclosed in double quotes at line 1 column 2\); "
              r"write an object such as '\{\"conv1\": \{\"lanes\": 2\}, \"fc1\": \{\"lanes\": 7\}\}'$"),
    ("[1]", r"^--params must be a JSON object of layers such as .*, not list '\[1\]'$"),
    ("7", r"^--params must be a JSON object of layers such as .*, not int '7'$"),
    ('{"fc1": 7}', r"^--params: layer 'fc1' must map to an object of options such as \{\"lanes\": 4\}, not 7$"),
    ("no/such/file.json", r"^--params is not valid JSON"),
])
def test_refusals(text, message):
    with pytest.raises(ParamsError, match=message):
        parse_params(text)


def test_file_is_named_in_the_message(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"fc1": [1]}')
    with pytest.raises(ParamsError, match=rf"^--params file {path}: layer 'fc1' must map"):
        parse_params(str(path))


def test_commands_share_it(tmp_path, capsys):
    """hw.bench refuses a bad --params with the same message as hw.generate and hw.build."""
    from hw.bench import main

    assert main(["--model", "models/tiny", "--data", str(tmp_path), "--params", "[1]"]) == 2
    assert "--params must be a JSON object of layers" in capsys.readouterr().err
