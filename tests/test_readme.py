"""README's code and commands name things that exist: its excerpts cannot drift from the API."""

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyte_bridge.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)


def imported_names(source: str) -> list[tuple[str, str]]:
    """Every ``from module import name`` of a code block."""
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    ]


def cli_invocations() -> list[list[str]]:
    """The words of README's ``flyte-bridge ...`` command lines, placeholders dropped."""
    invocations = []
    for block in BASH_BLOCKS:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("flyte-bridge "):
                words = shlex.split(re.sub(r"<.*?>|[\[\]]", "", line))[1:]
                invocations.append(words)
    return invocations


def test_readme_has_the_python_excerpts_and_cli_lines_this_test_checks():
    assert len(PYTHON_BLOCKS) >= 6
    assert len(cli_invocations()) >= 10


@pytest.mark.parametrize("source", PYTHON_BLOCKS, ids=lambda s: s.splitlines()[0][:40])
def test_every_name_a_readme_excerpt_imports_exists(source):
    for module, name in imported_names(source):
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_every_cli_command_and_option_in_readme_exists():
    runner = CliRunner()
    for words in cli_invocations():
        command = [word for word in words if not word.startswith("-")]
        options = [word.split("=")[0] for word in words if word.startswith("--")]
        result = runner.invoke(cli, [*command[:2], "--help"])
        assert result.exit_code == 0, (words, result.output)
        for option in options:
            assert option in result.output, (words, option)
