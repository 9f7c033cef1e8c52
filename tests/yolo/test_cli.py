"""The ``yct`` command: help, info output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY_CFG
from yct.cli import COMMANDS, main
from yolo.io import save_checkpoint
from yolo.zoo import create_model


def _yct(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "yct.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command() -> None:
    result = _yct("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_version_is_the_installed_distribution(capsys) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"yct {metadata.version('yolo-compress-tune')}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: yct " + command in capsys.readouterr().out


def test_info_json_has_every_key(capsys) -> None:
    assert (
        main(
            [
                "info",
                "yolov3-tiny",
                "--img-size",
                "128",
                "--width",
                "0.25",
                "--latency-runs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {
        "params",
        "nonzero_params",
        "macs",
        "effective_macs",
        "storage_mb",
        "sparse_storage_mb",
        "latency_ms",
    }
    model = create_model("yolov3-tiny", num_classes=20, width=0.25)
    assert data["params"] == sum(p.numel() for p in model.parameters())
    assert data["macs"] == data["effective_macs"] > 0


def test_info_text_for_cfg_and_checkpoint(tmp_path, capsys) -> None:
    cfg = tmp_path / "m.cfg"
    cfg.write_text(TINY_CFG)
    assert main(["info", str(cfg), "--img-size", "64", "--latency-runs", "0"]) == 0
    out = capsys.readouterr().out
    assert "2 classes" in out and "MACs (dense)" in out and "not measured" in out
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, create_model("yolo-nano", num_classes=5, width=0.25))
    assert main(["info", str(ckpt), "--img-size", "64", "--latency-runs", "0"]) == 0
    assert "5 classes" in capsys.readouterr().out


def test_info_zoo_table(capsys) -> None:
    assert (
        main(["info", "--zoo", "--img-size", "64", "--width", "0.25", "--latency-runs", "0"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("| yolo") == 6


@pytest.mark.parametrize(
    "args,pattern",
    [
        (["info", "yolov9"], "unknown model 'yolov9'; valid models: yolov3"),
        (["info", "yolov3", "--img-size", "100"], "--img-size must be a positive multiple of 32"),
        (["info"], "give either MODEL or --zoo"),
        (["info", "missing.pt"], "checkpoint not found: missing.pt"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, pattern, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and pattern in err and err.startswith("yct info: error: ")


def test_bad_cfg_through_the_console_script_has_no_traceback(tmp_path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(TINY_CFG.replace("[shortcut]", "[reorg]"))
    result = _yct("info", str(cfg))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert f"{cfg}:" in result.stderr and "block 2: unknown section [reorg]" in result.stderr


def test_no_option_shows_its_name_in_capitals_for_a_value() -> None:
    """argparse's default metavar (IMG_SIZE, LR0) says nothing about the value."""
    import argparse

    from yct.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    shown = []
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.option_strings and action.nargs != 0 and action.choices is None:
                shown.append((name, action.dest, action.metavar))
    assert shown and all(metavar is not None for _, _, metavar in shown), [
        s for s in shown if s[2] is None
    ]
