"""README opens with exactly two commands; .ci/run runs the second verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)\n```", head, flags=re.S)


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    cmds = _commands()
    assert len(cmds) == 2
    install_run, test = cmds
    assert "neurozo compare" in install_run and "torch==2.13.0" in install_run
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()



def test_readme_lists_every_registered_name():
    import neurozo

    text = (ROOT / "README.md").read_text()
    for reg in (neurozo.tasks.registry, neurozo.substrates.registry, neurozo.learners.registry):
        for name in reg.names():
            assert f"`{name}`" in text, f"README does not mention {reg.kind} {name!r}"
