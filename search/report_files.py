"""Writes a study's results files, trials.csv, pareto.html and report.html (atomically, readable by
everyone), and the combined report of several studies (``boolnas-report study=a,b``).

search/report.py says what the files hold, search/report_figures.py draws the figures and
search/report_html.py lays out the pages; this module puts them together into files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import optuna
import pandas as pd

from boolnas.search.fingerprint import describe, differences, fingerprint
from boolnas.search.report import StudyResults, study_results
from boolnas.search.report_figures import pareto_figure
from boolnas.search.report_html import combined_page, figure_page, study_page
from boolnas.space.files import write_text_atomic

log = logging.getLogger("boolnas.search.report")  # the name these messages had in search/report.py


def write_reports(study: optuna.Study, out_dir: Path) -> dict[str, Path]:
    """Write trials.csv, pareto.html and report.html for ``study`` into ``out_dir``."""
    return write_study_files(study_results(study), out_dir)


def write_study_files(results: StudyResults, out_dir: Path) -> dict[str, Path]:
    """trials.csv, pareto.html and report.html of one study (see :func:`write_reports`)."""
    out_dir = Path(out_dir)
    paths = {"csv": _write(out_dir / "trials.csv", results.df.to_csv(index=False))}
    paths["pareto"] = _write(out_dir / "pareto.html", figure_page(pareto_figure(results), results))
    paths["report"] = _write(out_dir / "report.html", study_page(results))
    log.info("wrote %s, %s and %s", paths["csv"], paths["pareto"], paths["report"])
    return paths


def combined_dir(results_dir: Path, names: Sequence[str]) -> Path:
    """Where the combined report of several studies goes by default: ``results/<a>+<b>/``
    ('+' is not allowed in a study name, so the folder never collides with a study's)."""
    return Path(results_dir) / "+".join(names)


def comparability(all_results: Sequence[StudyResults]) -> list[str]:
    """Check that studies can share one report. Different objectives: a ValueError (their fronts
    rank different things). Other result-defining settings that differ (data, budget, task,
    energy profile, constraints, space): one warning line per difference, shown in the report."""
    if len({r.name for r in all_results}) != len(all_results):
        raise ValueError(f"study= names a study twice: {[r.name for r in all_results]}")
    first = all_results[0]
    for other in all_results[1:]:
        if other.objectives != first.objectives:
            raise ValueError(
                f"studies {first.name!r} and {other.name!r} have different objectives ({list(first.objectives)} vs "
                f"{list(other.objectives)}): their fronts rank different things; report them separately")
    warnings = []
    base = {k: v for k, v in fingerprint(first.config).items() if k != "seed"}  # replicates differ in seed
    for other in all_results[1:]:
        diffs = differences(base, {k: v for k, v in fingerprint(other.config).items() if k != "seed"})
        if diffs:
            warnings.append(f"{other.name!r} differs from {first.name!r} in:\n{describe(diffs)}")
    return warnings


def write_combined_report(all_results: Sequence[StudyResults], out_dir: Path,
                          own_reports: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """One report.html (and a trials.csv with a ``study`` column) overlaying the fronts and the
    hypervolume histories of several studies; a ValueError when they cannot be compared.
    ``own_reports``: each study's own report.html, linked from the combined one."""
    if len(all_results) < 2:
        raise ValueError("a combined report needs at least two studies: study=a,b")
    warnings = comparability(all_results)
    for w in warnings:
        log.warning("combined report: %s", w)
    out_dir = Path(out_dir)
    table = pd.concat([r.df.assign(study=r.name) for r in all_results], ignore_index=True)
    table = table[["study", *[c for c in table.columns if c != "study"]]]
    paths = {"csv": _write(out_dir / "trials.csv", table.to_csv(index=False)),
             "report": _write(out_dir / "report.html", combined_page(all_results, warnings, out_dir, own_reports))}
    log.info("wrote %s and %s", paths["csv"], paths["report"])
    return paths


def _write(path: Path, text: str) -> Path:
    """Atomic write, readable by everyone (results are shared files)."""
    out = write_text_atomic(path, text)
    os.chmod(out, 0o644)
    return out
