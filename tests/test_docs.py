"""The docs stay in step with the code."""
import re

from connectors import config as config_mod
from console import keymap
from console.commands.keys import README_END, README_START, markdown_table
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_key_table_is_the_generated_one():
    start = README.index(README_START) + len(README_START)
    table = README[start:README.index(README_END)].strip()
    assert table == markdown_table(keymap.load(False)), "run: omnidesk keys --markdown --defaults > README section"


def test_readme_starts_with_the_two_commands():
    commands = re.findall(r"^python3 -m venv .+$", README, flags=re.M)[:2]
    assert commands[0].endswith("omnidesk demo")
    assert commands[1].endswith("pytest -n auto -q")
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci  # CI runs exactly the README command


def test_every_channel_option_the_readme_shows_exists():
    for channel, body in re.findall(r"```toml\n\[(\w+)\.main\]\n(.*?)```", README, flags=re.S):
        for key in re.findall(r"^(\w+) =", body, flags=re.M):
            assert key in config_mod.ACCOUNT_SECTIONS[channel], f"README shows unknown [{channel}] key {key}"


def test_the_readme_map_of_the_house_names_files_that_exist():
    block = README[README.index("## Development"):]
    block = block[:block.index("Benchmarks")]
    names = set(re.findall(r"\b([a-z_]+\.(?:py|toml))\b", block)) - {"pyproject.toml"}
    files = {p.name for pkg in ("console", "connectors", "store", "tests") for p in (ROOT / pkg).rglob("*.py")}
    files |= {"keybindings.toml"}
    assert names and names <= files, f"README map names missing files: {sorted(names - files)}"
    for package in re.findall(r"^([a-z]+)/ ", block, flags=re.M):
        assert (ROOT / package).is_dir(), package
