"""curate.evaluate: held-out evaluators, metrics, judges and comparison reports.

>>> from curate.evaluate import EvaluateConfig, eval_run
>>> result = eval_run("runs/sft-full-20260101-000000-abc123", store_root="datasets")   # doctest: +SKIP
>>> result.metric("exact_match").verdict                                                 # doctest: +SKIP
'better'

Names load on first use, so ``curate.evaluate.config`` (the ``evaluate:`` block that pipeline
and recipe models type) costs only pydantic, and no torch is imported until a model loads.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import EvaluateConfig, ForgettingConfig, GenerationConfig, JudgeConfig

_LAZY = {
    "Interval": "bootstrap", "bootstrap_ci": "bootstrap", "paired_bootstrap_diff": "bootstrap",
    "compare_runs": "compare",
    "forgetting_check": "forgetting", "load_regression_set": "forgetting",
    "generate_answers": "generation",
    "export_lm_eval_task": "harness", "run_lm_eval": "harness",
    "HeldOutError": "heldout", "check_held_out": "heldout",
    "LLMJudge": "judges", "RewardModelJudge": "judges", "load_judge_template": "judges",
    "TEXT_METRICS": "metrics", "score_texts": "metrics",
    "assistant_token_loss": "perplexity",
    "dpo_reward_margins": "preference", "reward_scores": "preference",
    "render_html": "report", "render_markdown": "report", "write_report": "report",
    "EvalResult": "results", "MetricResult": "results",
    "eval_run": "run", "evaluate_after_training": "run",
    "WinRate": "winrate", "pairwise_win_rate": "winrate",
}  # fmt: skip

__all__ = sorted(["EvaluateConfig", "ForgettingConfig", "GenerationConfig", "JudgeConfig", *_LAZY])

if TYPE_CHECKING:
    from .bootstrap import Interval, bootstrap_ci, paired_bootstrap_diff
    from .compare import compare_runs
    from .forgetting import forgetting_check, load_regression_set
    from .generation import generate_answers
    from .harness import export_lm_eval_task, run_lm_eval
    from .heldout import HeldOutError, check_held_out
    from .judges import LLMJudge, RewardModelJudge, load_judge_template
    from .metrics import TEXT_METRICS, score_texts
    from .perplexity import assistant_token_loss
    from .preference import dpo_reward_margins, reward_scores
    from .report import render_html, render_markdown, write_report
    from .results import EvalResult, MetricResult
    from .run import eval_run, evaluate_after_training
    from .winrate import WinRate, pairwise_win_rate


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
