"""curate.evaluate: held-out evaluators, metrics, judges and comparison reports."""
