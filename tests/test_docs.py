"""The docs, the README and --help agree: every setting and every command is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from intake.cli import main
from intake.server.config import SIZES, Config, env_name, parse_size

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"


def documentation() -> str:
    """The README and every page under docs/, as one text."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages if p.exists())


def commands(command: click.Command, path: tuple[str, ...] = ("intake",)):
    """(path, command) for every command under `intake`, groups included; the
    top group loads each place's commands on use, so they are asked for by name."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from commands(command.get_command(ctx, name), (*path, name))


def test_every_command_is_found():
    found = set(leaf_commands())
    assert {"intake serve", "intake keygen", "intake decrypt", "intake vault import",
            "intake queue export", "intake staff add", "intake doctor"} <= found


def leaf_commands() -> list[str]:
    return [" ".join(p) for p, c in commands(main) if not isinstance(c, click.Group)]


def options():
    seen = []
    for path, command in commands(main):
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    # --help and --version are Click's own, the same everywhere.
                    if opt.startswith("--") and opt not in {"--help", "--version"}:
                        seen.append((" ".join(path), opt))
    return seen


@pytest.fixture(scope="module")
def docs() -> str:
    return documentation()


@pytest.fixture(scope="module")
def configuration() -> str:
    return CONFIGURATION.read_text(encoding="utf-8")


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Config)])
def test_every_setting_is_documented(configuration, field):
    rows = [line for line in configuration.splitlines()
            if re.match(rf"\|\s*`{field}`\s*\|", line)]
    assert rows, f"{field} is not in the settings table of docs/configuration.md"
    row = rows[0]
    assert f"`{env_name(field)}`" in row, f"{field}: its variable {env_name(field)} is missing"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 4 and all(cells), f"{field}: needs a default and a meaning"


def test_documented_defaults_match_the_code(configuration):
    defaults = Config()
    for line in configuration.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|\s*`INTAKE_\w+`\s*\|\s*(.*?)\s*\|", line)
        if not m or m.group(1) not in {f.name for f in dataclasses.fields(Config)}:
            continue
        name, cell = m.groups()
        value = getattr(defaults, name)
        written = re.findall(r"`([^`]*)`", cell)
        if isinstance(value, Path | str):
            expected = str(value)
            assert (expected in written) if expected else cell.startswith("empty"), (name, cell)
        elif name in SIZES:  # written as a size, parsed like the setting
            assert [parse_size(w) for w in written][:1] == [value], (name, cell, value)
        else:
            assert str(value) in written, (name, cell, value)


def test_no_documented_setting_is_unknown(configuration):
    known = {f.name for f in dataclasses.fields(Config)}
    documented = set(re.findall(r"^\|\s*`(\w+)`\s*\|\s*`INTAKE_", configuration, re.M))
    assert documented == known


def test_configuration_explains_the_file_precedence_and_refusals(configuration):
    text = configuration.lower()
    assert "INTAKE_CONFIG" in configuration and "```toml" in configuration
    assert "defaults" in text and "environment" in text
    for refusal in ("missing", "cannot be read", "private key", "no public key"):
        assert refusal in text, refusal


def test_the_toml_example_loads(configuration, tmp_path):
    from intake.server.config import load_config

    example = re.search(r"```toml\n(.*?)```", configuration, re.S).group(1)
    path = tmp_path / "intake.toml"
    path.write_text(example)
    config = load_config({"INTAKE_CONFIG": str(path)})
    assert config.data_dir == Path("/var/lib/intake")


@pytest.mark.parametrize("path", leaf_commands())
def test_every_command_is_documented(docs, path):
    assert path in docs, f"'{path}' is not mentioned in README.md or docs/"


@pytest.mark.parametrize(("path", "option"), options(), ids=lambda v: v)
def test_every_option_is_documented(docs, path, option):
    assert re.search(re.escape(option) + r"(?![\w-])", docs), \
        f"{option} (of '{path}') is not mentioned in README.md or docs/"


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make demo\b", readme, re.M)
    assert re.search(r"^make test\b", readme, re.M)
    assert "docs/configuration.md" in readme


def test_help_points_to_the_configuration_doc():
    assert "docs/configuration.md" in (main.help or "")
    assert CONFIGURATION.exists()
