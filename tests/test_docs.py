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


def test_the_readme_template_commands_fill_every_value_the_starter_templates_ask_for():
    """A newcomer copies these: each must render on every channel with only its --set values."""
    import shlex

    from connectors.desk import templates as tpl

    text = README.replace("\\\n", " ").replace("\n--", " --")
    commands = re.findall(r"omnidesk (?:reply \S+ --template|templates render) [^`\n]+", text)
    assert len(commands) >= 2
    for command in commands:
        words = shlex.split(command)
        name = words[words.index("--template") + 1] if "--template" in words else words[3]
        values = dict(w.split("=", 1) for i, w in enumerate(words) if i and words[i - 1] == "--set")
        for channel in tpl.CHANNELS:  # no facts: the example customer may have none
            context = tpl.context_for("Jane Roe", "Alex Morgan", channel, None, values)
            tpl.render(name, channel, context, directory=tpl.STARTER_DIR)  # MissingValues names what the README lacks
