"""The command line's shape: which commands exist, which module registers each one and its flags,
and the one ``--json`` / ``--report FILE`` convention of every command that reports figures."""

import argparse
import dataclasses
import json

import pytest

from wavenet_tf.apps import cli
from wavenet_tf.apps.cli import main
from wavenet_tf.core.config import DataConfig, ModelConfig, TrainConfig

REPORT = ["--json", "--report"]

# Each command's own flags, in order (recorded from the single-file cli.py before the split;
# `--json FILE` of the benches became `--report FILE`). Configuration fields come after them.
OWN_FLAGS = {
    "info": ["--preset", *REPORT],
    "data inspect": ["data", "--preset", *REPORT, "--strict", "--cache-dir", "-v"],
    "data builtin": ["out", "--files", "--seconds", "--sample-rate", "--seed"],
    "bench-train": ["--presets", "--batch-size", "--target-length", "--steps", *REPORT],
    "bench-quality": ["--out", "--cpu-minutes", "--speaker-cpu-minutes", "--mel-cpu-minutes", "--preset",
                      "--steps-per-epoch", "--seconds", "--streams", "--seed", *REPORT],
    "bench-recipe": ["--out", "--cpu-minutes", "--preset", "--levers", "--lever", "--base", "--data",
                     "--steps-per-epoch", "--seed", *REPORT],
    "bench-sound": ["--out", "--suites", "--lever", "--draws", "--seeds", "--seconds", "--instrument-cpu-minutes",
                    "--vocoder-cpu-minutes", "--melody-steps", "--seed", *REPORT],
    "bench-data": ["data", "--preset", "--batches", "--train-steps", "--cache-dir", *REPORT],
    "train": ["data", "--out", "--preset", "--resume", "--val-data", "--mixed-precision", "--global-cond",
              "--allow-one-label", "--local-cond", "--strict", "--cache-dir", "-v"],
    "evaluate": ["target", "data", "--engine", "--speaker", *REPORT, "--strict", "--cache-dir"],
    "export": ["run", "--out", "--opset", "--verify"],
    "generate": ["bundle", "--seconds", "--out", "--temperature", "--top-k", "--seed", "--prime", "--prime-start",
                 "--prime-seconds", "--speaker", "--mel-from", "--streams", "--threads", "--engine", "--chunk-size",
                 "--quiet"],
    "serve": ["bundle", "--host", "--port", "--max-streams", "--queue-limit", "--max-seconds", "--threads", "--engine",
              "--max-body-bytes", "--timeout", "--api-key"],
    "bench": ["bundle", "--seconds", "--threads", "--repeats", *REPORT],
    "bench-levers": ["bundle", "--audio", "--seconds", "--repeats", *REPORT],
    "demo": ["--out", "--steps", "--seconds", "--seed"],
}


def flags(fields):
    return ["--" + f.name.replace("_", "-") for f in fields]


# The configuration fields each command takes as flags (they follow the dataclasses).
CONFIG_FLAGS = {
    "info": flags(dataclasses.fields(ModelConfig)),
    "data inspect": ["--sample-rate", *flags(dataclasses.fields(DataConfig))],
    "bench-data": flags(dataclasses.fields(DataConfig)),
    "train": [*flags(dataclasses.fields(TrainConfig)), *flags(dataclasses.fields(DataConfig)),
              *flags(dataclasses.fields(ModelConfig))],
}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [action.option_strings[0] if action.option_strings else action.dest for action in parser._actions
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))]


def commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every leaf command by its full name ("data inspect")."""
    found = {}
    for name, sub in subparsers(parser).items():
        nested = commands_of(sub)
        found.update({f"{name} {k}": v for k, v in nested.items()} if nested else {name: sub})
    return found


def test_wavenet_lists_the_same_commands_in_the_same_order():
    assert list(subparsers(cli.build_parser())) == ["info", "data", "bench-train", "bench-quality", "bench-recipe",
                                                    "bench-sound", "bench-data", "train", "evaluate", "export", "generate", "serve",
                                                    "bench", "bench-levers", "demo"]


@pytest.mark.parametrize("module", cli.COMMANDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_each_module_registers_exactly_its_own_command_and_flags(module):
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers())
    commands = commands_of(parser)
    assert commands, module.__name__
    for name, sub in commands.items():
        assert option_names(sub) == OWN_FLAGS[name] + CONFIG_FLAGS.get(name, []), name
        # The handler beside the flags runs the command.
        assert sub.get_default("func").__module__ == module.__name__, name
    assert module.__name__.rsplit(".", 1)[-1] == next(iter(commands)).split()[0].replace("-", "_")


def test_every_command_is_in_the_table():
    assert set(commands_of(cli.build_parser())) == set(OWN_FLAGS)


def test_json_means_one_thing_everywhere():
    for name, sub in commands_of(cli.build_parser()).items():
        actions = {a.option_strings[0]: a for a in sub._actions if a.option_strings}
        if "--json" not in actions:
            assert "--report" not in actions, name
            continue
        assert isinstance(actions["--json"], argparse._StoreTrueAction), name
        assert actions["--report"].metavar == "FILE" and actions["--report"].default is None, name


def test_json_prints_only_the_report_and_report_writes_it_too(tmp_path, capsys):
    assert main(["info", "--preset", "tiny", "--json", "--report", str(tmp_path / "info.json")]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads((tmp_path / "info.json").read_text())
    assert main(["info", "--preset", "tiny", "--report", str(tmp_path / "again.json")]) == 0
    assert "receptive_field" in capsys.readouterr().out  # the text, and the file beside it
    assert json.loads((tmp_path / "again.json").read_text())["receptive_field"] == 129


def test_an_unwritable_report_is_refused_before_the_work(tmp_path, capsys):
    # No bundle is loaded and nothing is measured: the --report check comes first.
    code = main(["bench", str(tmp_path / "no-bundle"), "--report", str(tmp_path / "missing" / "b.json")])
    err = capsys.readouterr().err
    assert code == 2 and "--report" in err and "does not exist" in err and "Traceback" not in err


def test_python_dash_m_runs_the_same_command(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "wavenet_tf.apps.cli", "data", "builtin", str(tmp_path / "m"),
                          "--files", "1", "--seconds", "0.1", "--sample-rate", "8000"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wrote 1 melodies")
