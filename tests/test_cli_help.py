"""Every ``codesign`` subcommand's ``--help`` (issue #21): each option says what it is and shows its
default; the renamed options' old spellings still parse (hidden) into the new destination.

In-process (the parser object's subparsers), so the whole check takes well under a second."""
import argparse
import contextlib
import io

import pytest

from codesign.cli import build_parser


def _subcommands():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return p, sub.choices


def _help_text(parser) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
        parser.parse_args(["--help"])
    assert e.value.code == 0
    return out.getvalue()


def _shown(action) -> bool:
    return action.help is not argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)


NAMES = sorted(_subcommands()[1])


def test_every_subcommand_is_checked():
    assert {"evaluate", "map", "evaluate-network", "search", "sweep", "export", "plot", "train-supernet",
            "accuracy-data", "train-predictor", "proxies", "cost-data", "train-cost-predictor",
            "templates"} <= set(NAMES)


def test_main_help_runs():
    p, _ = _subcommands()
    assert "evaluate" in _help_text(p)


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_help_and_shows_its_default(name):
    _, subs = _subcommands()
    parser = subs[name]
    text = " ".join(_help_text(parser).split())          # argparse wraps lines: compare word by word
    missing, no_default = [], []
    for a in parser._actions:
        if not _shown(a):
            continue
        flag = a.option_strings[0] if a.option_strings else a.dest
        if not (a.help or "").strip():
            missing.append(flag)
            continue
        d = a.default
        if a.option_strings and d is not None and not isinstance(d, bool) and d is not argparse.SUPPRESS:
            shown = parser.formatter_class(prog=parser.prog)._get_help_string(a) % {**vars(a), "default": d}
            if f"default: {d}" not in " ".join(shown.split()) or f"default: {d}" not in text:
                no_default.append(f"{flag}={d!r}")
    assert not missing, f"codesign {name}: options without help text: {missing}"
    assert not no_default, f"codesign {name}: defaults not shown in --help: {no_default}"


def test_hidden_aliases_are_hidden_and_parse_into_the_new_name(capsys):
    p = build_parser()
    cases = [
        (["export", "RUN", "--design", "1", "--to", "D"], "out", "D", "--to"),
        (["cost-data", "--n", "7", "--out", "c.jsonl"], "genomes", 7, "--n"),
        (["accuracy-data", "--data", "x", "--out", "a.jsonl", "--n", "9"], "measurements", 9, "--n"),
        (["proxies", "--n", "5"], "subnets", 5, "--n"),
        (["proxies", "--dataset", "a.jsonl", "b.jsonl"], "accuracy_data", ["a.jsonl", "b.jsonl"], "--dataset"),
        (["train-predictor", "--dataset", "a.jsonl", "--out", "p.npz", "--holdout", "0.3"],
         "holdout_fraction", 0.3, "--holdout"),
        (["train-cost-predictor", "--dataset", "c.jsonl", "--out", "c.npz", "--holdout", "0.1"],
         "holdout_fraction", 0.1, "--holdout"),
    ]
    _, subs = _subcommands()
    for argv, dest, value, old in cases:
        args = p.parse_args(argv)
        assert getattr(args, dest) == value, argv
        assert f"{old} is now" in capsys.readouterr().err
        assert f" {old} " not in " ".join(_help_text(subs[argv[0]]).split()) + " "
    # the new spellings, and train-supernet's --resume DIR and its bare legacy form
    assert p.parse_args(["train-predictor", "--accuracy-data", "a.jsonl", "--out", "p.npz",
                         "--holdout-fraction", "0.25"]).holdout_fraction == 0.25
    assert p.parse_args(["train-supernet", "--data", "d", "--resume", "runs/s"]).resume == "runs/s"
    legacy = p.parse_args(["train-supernet", "--data", "d", "--out", "runs/s", "--resume"])
    assert legacy.resume == "" and legacy.out == "runs/s"
    assert p.parse_args(["accuracy-data", "--data", "x", "--out", "a.jsonl"]).holdout == 5000     # a count


def test_no_option_means_a_count_in_one_command_and_a_fraction_in_another():
    """``--holdout`` is a count of images; fractions are ``--holdout-fraction``."""
    _, subs = _subcommands()
    for name, parser in subs.items():
        for a in parser._actions:
            if "--holdout" in a.option_strings and _shown(a):
                assert a.type is int, name
            if "--holdout-fraction" in a.option_strings:
                assert a.type is float, name
