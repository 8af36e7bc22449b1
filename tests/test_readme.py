"""The README is read from the top: the two commands on the first screen, every contents link
lands on a heading, at most 300 lines, CI runs the README's own test command, the journey runs as
written, and the reference pages' links and API page are current."""

import importlib
import importlib.util
import os
import re
import shlex

import pytest
from conftest import TINY_TRAINING

# Text files alone: the same in both Keras flavours, so the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as file:
        return file.read()


def _anchor(heading):
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _commands(text):
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_first_screen_holds_the_two_commands_and_the_contents():
    readme = _read("README.md")
    first_screen = "\n".join(readme.splitlines()[:62])
    main_job, tests = _commands(first_screen)[:2]
    assert main_job.startswith("pip install -e . && sm-pixel-ce compare")  # no extra needed
    assert tests == 'pip install -e ".[test]" && ruff check . && bash tests/run_all.sh'
    runs = _read("tests/run_all.sh")  # every flavour and backend, each its own process
    assert "python -m pytest -n 2 " in runs
    legacy = "TF_USE_LEGACY_KERAS=1 nice -n 10 python -m pytest -n 2"
    legacy += ' -m "not slow and not one_flavor"'
    assert legacy in runs
    assert "KERAS_BACKEND=jax python -m pytest -m jax tests/test_jax_*.py" in runs
    assert "KERAS_BACKEND=torch python -m pytest -m torch tests/test_torch_*.py" in runs
    assert "Contents:" in first_screen and 'activation="pixel_softmax"' in readme


def test_every_contents_link_lands_on_a_heading_and_every_section_is_listed():
    readme = _read("README.md")
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    anchors = {_anchor(h) for h in headings}
    links = re.findall(r"\]\(#([^)]+)\)", readme)
    assert links and not set(links) - anchors, sorted(set(links) - anchors)
    contents = readme[readme.index("Contents:") :].split("\n\n")[0]
    assert {_anchor(h) for h in headings} <= set(re.findall(r"\]\(#([^)]+)\)", contents))


def test_readme_is_at_most_300_lines_and_its_local_links_exist():
    readme = _read("README.md")
    assert len(readme.splitlines()) <= 300
    for target in re.findall(r"\]\((?!https?:|#)([^)]+)\)", readme):
        path, _, anchor = target.partition("#")
        assert os.path.exists(os.path.join(ROOT, path)), target
        if anchor:  # a heading of that page
            headings = re.findall(r"^#+ (.+)$", _read(path), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, target


def test_ci_runs_the_readme_test_command():
    tests = _commands(_read("README.md"))[1]
    assert tests in _read(".ci", "run")


def test_the_reference_pages_links_exist():
    pages = [name for name in os.listdir(os.path.join(ROOT, "examples")) if name.endswith(".md")]
    for name in pages:
        for target in re.findall(r"\]\((?!https?:|#)([^)#]+)[^)]*\)", _read("examples", name)):
            assert os.path.exists(os.path.join(ROOT, "examples", target)), (name, target)


def _example_module(name):
    path = os.path.join(ROOT, "examples", name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_deploying_script_rewrites_its_table_and_keeps_the_sections_below():
    page = _read("examples", "deploying.md")
    new = "# Deploying: formats x runtimes, measured\n\n| Format | X |\n|---|---|\n| a | 1 |\n"
    text = _example_module("deploying_table").replace_generated(page, new)
    assert text.startswith(new) and "| tflite | float32 |" not in text
    below = page[page.index("\nLatency is noisy here") :]
    assert text == new + below and "## Memory: exporting a 57 MB U-Net" in below


def test_the_api_page_lists_every_public_object_as_it_is_now():
    # Regenerated and compared: a new public object or a changed signature fails until
    # `python examples/api_reference.py` is rerun.
    module = _example_module("api_reference")
    page = _read("examples", "api.md")
    assert module.render() == page
    for name, _ in module.MODULES:
        for public in module.public_names(importlib.import_module(name)):
            assert f"- `{public}" in page, (name, public)


#: What the journey's test adds to each command so that it runs in seconds: fewer and smaller
#: scenes, the tests' tiny training (tests/conftest.py: one epoch of plain SGD at 32 px) of the
#: `cce` run that the later commands use (two variants compared: tests/test_compare.py), the run
#: and the ONNX conversion in this process (no TensorFlow start-up; the child process of a large
#: model's export is tested in tests/test_export.py). The commands are otherwise as written.
_QUICK = {
    "scenes": ["--count", "12", "--size", "32"],
    "compare": [*TINY_TRAINING, "--variants", "cce", "--in-process"],
    "export": ["--in-process"],
}


def _journey():
    """The README's journey: the ``sm-pixel-ce`` commands of the bash block under its heading, one
    per line (its ``pip install`` of an extra is what the test environment already has)."""
    readme = _read("README.md")
    section = readme[readme.index("## The journey on the project's own data") :]
    lines = [line.split("  #")[0] for line in _commands(section)[0].splitlines()]
    assert all(line.startswith(("sm-pixel-ce ", "pip install")) for line in lines), lines
    return [shlex.split(line) for line in lines if line.startswith("sm-pixel-ce ")]


def _run_journey(tmp_path, monkeypatch, quick):
    from sm_pixel_ce.cli import main

    monkeypatch.chdir(tmp_path)
    for argv in _journey():
        assert argv[0] == "sm-pixel-ce", argv
        extra = _QUICK.get(argv[1], []) if quick else []
        assert main(argv[1:] + extra) == 0, argv
    return tmp_path


def test_the_journey_runs_as_written(tmp_path, monkeypatch):
    _run_journey(tmp_path, monkeypatch, quick=True)


@pytest.mark.slow
def test_the_journey_runs_at_its_own_sizes(tmp_path, monkeypatch):
    _run_journey(tmp_path, monkeypatch, quick=False)
