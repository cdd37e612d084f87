"""The ``codesign`` command line: one entry point for the whole project, one module per command
group (``accelerator``, ``nn``, ``search``, ``sweep``, ``export``, ``report``, ``cost``, ``darts``); each command parses its
arguments, calls the library and prints.

Bad input never produces a traceback: it prints one line naming the file and the field and
exits with status 2.
"""
from __future__ import annotations

import argparse
import sys

from codesign.cli.accelerator import add_accelerator_parsers, add_templates_parser
from codesign.cli.cost import add_cost_parsers
from codesign.cli.darts import add_darts_parser
from codesign.cli.export import add_export_parsers
from codesign.cli.nn import add_model_card_parser, add_nn_parsers
from codesign.cli.report import add_report_parser
from codesign.cli.runner import Parser, add_allow_large, run
from codesign.cli.search import add_search_parser
from codesign.cli.sweep import add_sweep_parser


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="codesign", description="Hardware-neural co-design simulator")
    sub = p.add_subparsers(dest="command", required=True)
    add_accelerator_parsers(sub)          # evaluate, map, evaluate-network
    add_nn_parsers(sub)                   # train-supernet, accuracy, accuracy-data, train-predictor, proxies
    add_search_parser(sub)
    add_darts_parser(sub)                 # darts (differentiable search, issue #22)
    add_model_card_parser(sub)
    add_sweep_parser(sub)
    add_export_parsers(sub)               # export, plot
    add_report_parser(sub)                # report (interactive HTML)
    add_cost_parsers(sub)                 # cost-data, train-cost-predictor
    add_templates_parser(sub)
    add_allow_large(sub)
    return p


def main(argv=None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
