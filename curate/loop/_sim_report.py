"""A simulation's outputs: curves.csv, the accuracy-against-labels plot and the Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.plots import line_chart

if TYPE_CHECKING:
    from curate.loop.simulate import SimulationConfig


@dataclass
class CurveSummary:
    """Mean curves over seeds and the labels each strategy needs to match random's full-budget accuracy."""

    means: pl.DataFrame  # strategy, round, labels, mean, sd (sd 0 with one seed)
    target: float | None  # random's mean accuracy at the last round; None without a random strategy
    reach: dict[str, float | None]  # strategy -> labels at which its mean curve first reaches target (interpolated)


def labels_to_reach(labels: list[int], accuracy: list[float], target: float) -> float | None:
    """The labels at which a curve first reaches ``target``, linearly interpolated between rounds; ``None``: never."""
    for i, (x, y) in enumerate(zip(labels, accuracy, strict=True)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = labels[i - 1], accuracy[i - 1]
            return x0 + (target - y0) / (y - y0) * (x - x0)
    return None


def summarize(curves: pl.DataFrame) -> CurveSummary:
    """Mean ± sd over seeds per strategy and round, and where each strategy reaches random's last mean."""
    means = (
        curves.group_by("strategy", "round", maintain_order=True)
        .agg(
            pl.col("labels").first(),
            pl.col("accuracy").mean().alias("mean"),
            pl.col("accuracy").std().fill_null(0.0).alias("sd"),
        )
        .sort("strategy", "round", maintain_order=True)
    )
    random = means.filter(pl.col("strategy") == "random")
    target = float(random["mean"][-1]) if random.height else None
    reach: dict[str, float | None] = {}
    if target is not None:
        for strategy in dict.fromkeys(curves["strategy"].to_list()):
            if strategy != "random":
                curve = means.filter(pl.col("strategy") == strategy)
                reach[strategy] = labels_to_reach(curve["labels"].to_list(), curve["mean"].to_list(), target)
    return CurveSummary(means=means, target=target, reach=reach)


def write_report(curves: pl.DataFrame, *, out: Path, config: SimulationConfig, data_rows: dict[str, int]) -> str:
    """Write ``curves.csv``, ``curves.svg`` and ``summary.md`` under ``out``; returns the summary text."""
    out.mkdir(parents=True, exist_ok=True)
    curves.write_csv(out / "curves.csv", float_precision=4)
    summary = summarize(curves)
    order = list(dict.fromkeys(curves["strategy"].to_list()))
    series, bands = {}, {}
    for strategy in order:
        curve = summary.means.filter(pl.col("strategy") == strategy)
        series[strategy] = (curve["labels"].to_list(), curve["mean"].to_list())
        bands[strategy] = curve["sd"].to_list()
    title = f"{config.name}: test accuracy (mean ± sd over {config.seeds} seeds)"
    (out / "curves.svg").write_text(line_chart(series, title=title, xlabel="labels", ylabel="accuracy", bands=bands),
                                    encoding="utf-8")  # fmt: skip
    text = _markdown(summary, order=order, config=config, data_rows=data_rows)
    (out / "summary.md").write_text(text, encoding="utf-8")
    return text


def _markdown(summary: CurveSummary, *, order: list[str], config: SimulationConfig, data_rows: dict[str, int]) -> str:
    labels = summary.means.filter(pl.col("strategy") == order[0])["labels"].to_list()
    lines = [
        f"# Simulation {config.name}",
        "",
        f"Pool {data_rows['pool_rows']:,} rows, test {data_rows['test_rows']:,} rows; head on {config.recipe.model}; "
        f"{config.initial} initial labels (stratified), {config.budget} per round for {config.rounds} rounds; "
        f"{config.seeds} seed{'s' if config.seeds > 1 else ''}.",
        "",
        "![test accuracy against labels](curves.svg)",
        "",
        "Test accuracy, mean ± sd over seeds, by labels:",
        "",
        "| strategy | " + " | ".join(f"{n:,}" for n in labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for strategy in order:
        curve = summary.means.filter(pl.col("strategy") == strategy)
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(curve["mean"], curve["sd"], strict=True)]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    if summary.target is not None and summary.reach:
        lines += ["", f"Labels needed to reach random's accuracy with the full budget ({summary.target:.3f} at "
                  f"{config.labels_at_end:,} labels; linear between rounds):", ""]  # fmt: skip
        for strategy, needed in summary.reach.items():
            if needed is None:
                lines.append(f"- {strategy}: not reached within {config.labels_at_end:,} labels")
            else:
                share = needed / config.labels_at_end
                lines.append(f"- {strategy}: {needed:,.0f} labels ({share:.0%} of random's)")
    return "\n".join(lines) + "\n"
