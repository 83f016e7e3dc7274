"""The active-learning loop: choose what is worth labeling, label it, retrain, evaluate.

`curate.loop.strategies` holds the scores shared by `curate loop` and `curate loop simulate`
(uncertainty, novelty, diversity); `curate.loop.simulate` replays the loop with gold labels.
"""
